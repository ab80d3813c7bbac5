"""/docs and /openapi.json: no raw RST backticks, request bodies spelled out field by field,
and the 404 and 409 answers a route can give listed with the error body."""

from __future__ import annotations

import re


def test_openapi_lists_errors_and_reads_as_markdown(client):
    schema = client.get("/openapi.json").json()
    assert "``" not in str(schema)
    paths = schema["paths"]
    assert "404" in paths["/api/runs/{run_id}"]["get"]["responses"]
    assert "404" in paths["/api/datasets/{dataset_id}/preview"]["get"]["responses"]
    for path, method in (("/api/runs/{run_id}", "delete"), ("/api/runs/{run_id}/cancel", "post"),
                         ("/api/runs/{run_id}/resume", "post"),
                         ("/api/datasets/{dataset_id}", "delete")):
        conflict = paths[path][method]["responses"]["409"]
        assert conflict["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}, path
    assert "404" not in paths["/api/runs"]["get"]["responses"]  # no resource named: no 404
    assert "409" not in paths["/api/runs/{run_id}"]["get"]["responses"]
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_docs_page_shows_code_bodies_and_errors(client):
    html = client.get("/docs").text
    assert "``" not in html
    assert "<code>metrics[run_id][name]</code>" in html  # a docstring's code as code
    # POST /api/runs: its body field by field, not only the type's name.
    launch = html[html.index("POST</span> <code>/api/runs</code>"):]
    launch = launch[:launch.index("</div>")]
    for field in ("dataset_id", "strategy", "base_model", "hyperparameters"):
        assert f"<code>{field}</code>" in launch, field
    assert "required" in launch
    cancel = html[html.index("<code>/api/runs/{run_id}/cancel</code>"):]
    cancel = cancel[:cancel.index("</div>")]
    assert re.search(r"<code>404</code>.*may have been deleted", cancel)
    assert re.search(r"<code>409</code>.*does not allow this", cancel)
