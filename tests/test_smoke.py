from tests.conftest import login


def test_official_signs_in_and_sees_dashboard(client, world):
    login(client, world.eu_member)
    page = client.get("/").get_data(as_text=True)
    assert "Question in joint" in page
    assert "Question in jp" not in page


def test_links_follow_the_mount_point_of_each_request(client, world):
    """Links without arguments (the header's, the stylesheet's) are built once per mount point: a
    portal also served under /portal (behind a proxy's path) must not hand one mount's links to the other."""
    login(client, world.eu_member)
    at_root = client.get("/").get_data(as_text=True)
    mounted = client.get("/", base_url="http://localhost/portal").get_data(as_text=True)
    again = client.get("/").get_data(as_text=True)
    for page, prefix in ((at_root, ""), (mounted, "/portal"), (again, "")):
        assert f'href="{prefix}/static/portal.css"' in page
        assert f'href="{prefix}/channels"' in page
        assert f'action="{prefix}/search"' in page
    # The replies' links are patterns made once per mount point too, then given each note's id.
    for key, prefix in (("joint", ""), ("eu", "/portal"), ("joint", "")):
        note, reply = world.notes[key], world.replies[key]
        page = client.get(f"/notes/{note.id}", base_url=f"http://localhost{prefix}").get_data(as_text=True)
        assert f'href="{prefix}/notes/{note.id}#reply-{reply.id}"' in page
        assert f'href="{prefix}/notes/{note.id}/replies/{reply.id}#respond"' in page
