"""search outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('search_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_outbox'))
    )
    with op.batch_alter_table('search_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_outbox_created_at'), ['created_at'], unique=False)
    # What existed before search goes through the outbox too, so every host indexes it on its
    # next sync without a manual rebuild.
    for entity, table in (("article", "articles"), ("note", "notes"), ("reply", "replies")):
        op.execute(
            f"INSERT INTO search_outbox (entity, entity_id, created_at) "
            f"SELECT '{entity}', id, CURRENT_TIMESTAMP FROM {table} ORDER BY id"
        )


def downgrade() -> None:
    with op.batch_alter_table('search_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_outbox_created_at'))
    op.drop_table('search_outbox')
