import pytest


@pytest.fixture(autouse=True)
def _live_worker(request):
    """Submissions need a live worker offering the backend; DB tests get this process as one."""
    if request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames):
        request.getfixturevalue("local_worker")
