from tests.conftest import login


def test_official_signs_in_and_sees_dashboard(client, world):
    login(client, world.eu_member)
    page = client.get("/").get_data(as_text=True)
    assert "Question in joint" in page
    assert "Question in jp" not in page
