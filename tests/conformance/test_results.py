"""How the tier counts Tempest's results: class fixtures, tests that never ran, the interop list by id."""

from __future__ import annotations

from conformance.results import failure_group, outcomes, summarise

A = "tempest.api.compute.servers.test_a.ServersTest"
B = "tempest.api.image.v2.test_b.ImagesTest"
ID1, ID2, ID3 = (f"{n}0000000-0000-4000-8000-000000000000" for n in "123")


def test_a_class_fixture_result_stands_for_its_tests_and_a_missing_result_is_a_failure() -> None:
    listed = [f"{A}.test_one[id-{ID1}]", f"{A}.test_two[id-{ID2},smoke]", f"{B}.test_three[id-{ID3}]"]
    results = [{"id": f"setUpClass ({A})", "status": "skip", "reason": "Server rescue not available."}]
    found = {o.test_id: o for o in outcomes(listed, results)}
    assert found[listed[0]].status == found[listed[1]].status == "skipped"
    assert found[listed[0]].reason == "Server rescue not available."
    assert found[listed[2]].status == "failed" and "did not run" in found[listed[2]].reason


def test_a_failed_fixture_is_named_in_the_reason() -> None:
    results = [{"id": f"setUpClass ({A})", "status": "fail", "reason": "KeyError: 'x-openstack-request-id'"}]
    (only,) = outcomes([f"{A}.test_one[id-{ID1}]"], results)
    assert (only.status, only.reason) == ("failed", "in setUpClass: KeyError: 'x-openstack-request-id'")


def test_the_interop_list_counts_each_required_id_once() -> None:
    # ID1 runs in two classes (a subclass repeats it): passed once is passed. ID3 is not in the run.
    listed = [f"{A}.test_one[id-{ID1}]", f"{B}.test_one[id-{ID1}]", f"{A}.test_two[id-{ID2}]"]
    results = [{"id": listed[0], "status": "fail", "reason": "x"}, {"id": listed[1], "status": "success", "reason": ""},
               {"id": listed[2], "status": "skip", "reason": "r"}]
    summary = summarise(listed, results, {ID1, ID2, ID3}, [], {})
    counts = summary.interop
    assert (counts.total, counts.passed, counts.skipped, counts.failed) == (3, 1, 1, 1)
    assert summary.interop_not_listed == [ID3]
    assert summary.services["compute"].passed == 0 and summary.services["image"].passed == 1


def test_failures_alike_share_a_group() -> None:
    one = failure_group("NotFound: {'code': 404, 'message': 'Server 1a2b3c4d-0000-4000-8000-00000000000a not found'}")
    two = failure_group("NotFound: {'code': 404, 'message': 'Server 9f8e7d6c-0000-4000-8000-00000000000b not found'}")
    assert one == two
