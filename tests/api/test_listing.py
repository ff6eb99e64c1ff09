"""List mechanics shared by every collection: filters, sorting, fields, marker paging."""

from __future__ import annotations

import pytest

from tests.factories import error_of, follow, make_network, make_segment, walk


@pytest.fixture
def seeded(api):
    net = make_network(api)
    segs = [make_segment(api, net["id"], network_type="vxlan", segmentation_id=i, name=f"s{i}")
            for i in (5, 3, 9, 1, 7)]
    return api, net, segs


class TestListSegments:
    def test_filters_repeated_values_mean_or(self, seeded):
        api, net, _ = seeded
        got = api.get("/v2.0/segments?segmentation_id=3&segmentation_id=9").json()["segments"]
        assert sorted(s["segmentation_id"] for s in got) == [3, 9]
        got = api.get(f"/v2.0/segments?network_id={net['id']}&network_type=geneve").json()
        assert len(got["segments"]) == 1

    def test_sort_and_fields_on_lists(self, seeded):
        api, _, _ = seeded
        url = ("/v2.0/segments?network_type=vxlan&sort_key=segmentation_id&sort_dir=desc"
               "&fields=segmentation_id")
        assert api.get(url).json() == {"segments": [{"segmentation_id": i} for i in (9, 7, 5, 3, 1)]}

    @pytest.mark.parametrize("sort", [("segmentation_id", "asc"), ("name", "desc"), ("id", "asc")])
    def test_marker_paging_visits_every_row_once(self, seeded, sort):
        api, _, _ = seeded
        items, pages = walk(api, f"/v2.0/segments?limit=2&sort_key={sort[0]}&sort_dir={sort[1]}",
                             "segments")
        assert len(items) == 6 and len({s["id"] for s in items}) == 6
        assert pages == 4  # three full pages, each linking on, and the empty one after
        full = api.get(f"/v2.0/segments?sort_key={sort[0]}&sort_dir={sort[1]}").json()["segments"]
        assert [s["id"] for s in items] == [s["id"] for s in full]

    def test_previous_link_walks_back(self, seeded):
        api, _, _ = seeded
        first = api.get("/v2.0/segments?limit=2&sort_key=name&sort_dir=asc").json()
        assert [link["rel"] for link in first["segments_links"]] == ["next", "previous"]
        nxt = first["segments_links"][0]["href"].replace("http://testserver", "")
        second = api.get(nxt).json()
        prev = [link["href"] for link in second["segments_links"] if link["rel"] == "previous"][0]
        back = api.get(prev.replace("http://testserver", "")).json()
        assert [s["id"] for s in back["segments"]] == [s["id"] for s in first["segments"]]

    def test_page_size_is_bounded_by_the_configured_maximum(self, api):
        net = make_network(api)
        for _ in range(55):
            make_segment(api, net["id"])
        body = api.get("/v2.0/segments?limit=1000").json()
        assert len(body["segments"]) == 50
        assert body["segments_links"][0]["rel"] == "next"
        items, _ = walk(api, "/v2.0/segments", "segments")
        assert len(items) == 56

    @pytest.mark.parametrize(
        ("query", "needle"),
        [
            ("bogus=1", "['bogus'] is invalid attribute for filtering"),
            ("segmentation_id=abc", "not an integer"),
            ("sort_key=segmentation_id", "The number of sort_keys and sort_dirs must be same"),
            ("sort_key=bogus&sort_dir=asc", "['bogus'] is invalid attribute for sort_keys"),
            ("sort_key=id&sort_dir=sideways", "is invalid value for sort_dirs"),
            ("sort_key=description&sort_dir=asc", "invalid attribute for sort_keys"),
            ("limit=-1", "Bad limit request"),
            ("limit=abc", "Bad limit request"),
            ("page_reverse=maybe", "page_reverse"),
            ("fields=bogus", "invalid attribute for fields"),
        ],
    )
    @pytest.mark.sqlite_only
    def test_bad_list_parameters_are_400(self, seeded, query, needle):
        api, _, _ = seeded
        resp = api.get(f"/v2.0/segments?{query}")
        assert resp.status_code == 400
        assert needle in error_of(resp)["message"]

    @pytest.mark.parametrize(
        "value",
        ["' OR 1=1 --", "1; DROP TABLE segments", "\\x00", "%", "_", "x" * 200, '"; --'],
    )
    def test_sql_metacharacters_in_filters_and_markers_are_inert(self, seeded, value):
        api, _, _ = seeded
        before = api.counts()
        every = api.get("/v2.0/segments").json()["segments"]
        for param in ("name", "network_id", "marker", "physical_network"):
            resp = api.get("/v2.0/segments", params={param: value})
            assert resp.status_code == 200, (param, resp.text)
            # A filter matches nothing; a marker that names no segment is ignored.
            assert resp.json()["segments"] == ([] if param != "marker" else every), param
        assert api.counts() == before

    def test_unknown_marker_starts_from_the_beginning(self, seeded):
        api, _, _ = seeded
        body = api.get("/v2.0/segments?limit=2&marker=00000000-0000-0000-0000-000000000000")
        assert len(body.json()["segments"]) == 2


def names(api, url, key="segments") -> list[str]:
    return [s["name"] for s in api.get(url).json()[key]]


class TestNeutronLinks:
    """Links as Neutron's api_common.get_pagination_links gives them, walked the way
    tempest's _test_list_pagination* tests walk them."""

    ORDER = "sort_key=name&sort_dir=asc"

    def test_a_full_last_page_links_to_an_empty_page_which_links_back(self, seeded):
        api, _, _ = seeded
        expected = names(api, f"/v2.0/segments?{self.ORDER}")
        pages, links = follow(api, f"/v2.0/segments?limit=1&{self.ORDER}", "segments")
        assert [[s["name"] for s in page] for page in pages] == [[n] for n in expected] + [[]]
        assert set(links) == {"previous"}
        assert "marker" not in links["previous"]  # an empty page links to the far end
        back, links = follow(api, links["previous"].replace("http://testserver", ""),
                             "segments", "previous")
        assert [[s["name"] for s in page] for page in back] == [[n] for n in expected[::-1]] + [[]]
        assert set(links) == {"next"}  # a reverse page always links forward

    def test_reverse_pages_link_both_ways(self, seeded):
        api, _, _ = seeded
        expected = names(api, f"/v2.0/segments?{self.ORDER}")
        body = api.get(f"/v2.0/segments?limit=2&page_reverse=True&{self.ORDER}").json()
        assert [s["name"] for s in body["segments"]] == expected[-2:]
        links = {link["rel"]: link["href"] for link in body["segments_links"]}
        assert links["next"].endswith(f"marker={body['segments'][-1]['id']}")
        assert links["previous"].endswith(f"marker={body['segments'][0]['id']}&page_reverse=True")
        pages, _ = follow(api, f"/v2.0/segments?limit=4&page_reverse=True&{self.ORDER}",
                          "segments", "previous")
        assert [len(p) for p in pages] == [4, 2]
        assert [s["name"] for page in pages[::-1] for s in page] == expected

    def test_page_reverse_from_a_marker_gives_the_rows_before_it(self, seeded):
        api, _, _ = seeded
        first = api.get(f"/v2.0/segments?limit=3&{self.ORDER}").json()["segments"]
        marker = first[-1]["id"]
        url = f"/v2.0/segments?limit=2&marker={marker}&page_reverse=True&{self.ORDER}"
        assert names(api, url) == [s["name"] for s in first[:-1]]

    @pytest.mark.parametrize("query", ["", "?limit=0", f"?{ORDER}"])
    def test_a_list_that_asked_for_no_paging_has_no_links_when_all_of_it_fits(self, seeded, query):
        api, _, _ = seeded
        body = api.get(f"/v2.0/segments{query}").json()
        assert list(body) == ["segments"] and len(body["segments"]) == 6


class TestMeta:
    def test_version_document_and_extensions(self, api):
        assert api.get("/").json()["versions"][0]["id"] == "v2.0"
        aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
        assert {"segment", "provider", "multi-provider", "net-mtu-writable"} <= aliases
        assert api.get("/v2.0/extensions/segment").json()["extension"]["alias"] == "segment"
        resp = api.get("/v2.0/extensions/dhcp_agent_scheduler")
        assert resp.status_code == 404
        assert error_of(resp) == {"type": "HTTPNotFound", "detail": "",
                                  "message": "The resource could not be found."}

    def test_unknown_path_is_neutron_404(self, api):
        resp = api.get("/v2.0/nothing")
        assert resp.status_code == 404
        assert error_of(resp)["type"] == "HTTPNotFound"
