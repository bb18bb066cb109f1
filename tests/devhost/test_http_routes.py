"""Route templates, request building and response conversion of HTTP-triggered functions."""

from __future__ import annotations

import json

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.triggers import ClientLinks, RouteTemplate, build_http_request, http_result

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("orders", "orders", {}),
        ("orders", "ORDERS/", {}),
        ("orders", "orders/1", None),
        ("orders/{id}", "orders/42", {"id": "42"}),
        ("orders/{id}", "orders", None),
        ("orders/{id?}", "orders", {}),
        ("orders/{id?}", "orders/7", {"id": "7"}),
        ("orders/{id:int}", "orders/x", None),
        ("orders/{id:int}", "orders/-3", {"id": "-3"}),
        ("items/{id:guid}", f"items/{GUID}", {"id": GUID}),
        ("items/{id:guid}", "items/nope", None),
        ("items/{id:guid?}", "items", {}),
        ("a/{name:alpha:minlength(2)}", "a/x", None),
        ("a/{name:alpha:minlength(2)}", "a/xy", {"name": "xy"}),
        ("a/{n:range(1,5)}", "a/6", None),
        ("a/{n:range(1,5)}", "a/5", {"n": "5"}),
        ("a/{flag:bool}", "a/True", {"flag": "True"}),
        ("a/{code:regex(^[a-z]+$)}", "a/ab", {"code": "ab"}),
        ("a/{code:regex(^[a-z]+$)}", "a/ab1", None),
        ("files/{*path}", "files/x/y/z.txt", {"path": "x/y/z.txt"}),
        ("files/{*path}", "files", {}),
        ("hello/{name=world}", "hello", {"name": "world"}),
        ("names/{name}", "names/J%C3%BCrgen%20K", {"name": "Jürgen K"}),
    ],
)
def test_route_template_matching(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_literal_routes_take_precedence_over_parameters() -> None:
    texts = ["orders/{id}", "orders/{*rest}", "orders/latest", "orders/{id:int}"]
    templates = [RouteTemplate(text) for text in texts]
    ordered = [t.template for t in sorted(templates, key=lambda t: t.precedence)]
    assert ordered == ["orders/latest", "orders/{id:int}", "orders/{id}", "orders/{*rest}"]


def test_unknown_constraint_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported route constraint"):
        RouteTemplate("a/{x:nonsense}")


def test_build_http_request_joins_repeated_values_like_the_host() -> None:
    request = build_http_request(
        method="post", url="http://127.0.0.1:7071/api/x?a=1&a=2&b=3",
        headers=[("X-Thing", "1"), ("x-thing", "2"), ("Content-Type", "application/json")],
        query=[("a", "1"), ("a", "2"), ("b", "3")], route_params={"id": "9"}, body=b'{"k": 1}',
    )
    assert request.method == "POST"
    assert request.params == {"a": "1,2", "b": "3"}
    assert request.headers["x-thing"] == "1, 2"
    assert request.route_params == {"id": "9"}
    assert request.get_json() == {"k": 1}


def test_http_result_conversions() -> None:
    response = http_result(func.HttpResponse("made", status_code=201, headers={"X-A": "b"}))
    assert response.status == 201 and response.body == b"made"
    assert ("Content-Type", "text/plain; charset=utf-8") in response.headers
    assert ("X-A", "b") in response.headers
    as_json = http_result(func.HttpResponse(b"{}", mimetype="application/json"))
    assert ("Content-Type", "application/json") in as_json.headers
    assert http_result("hi").status == 200
    for unsendable in (None, b"raw", {"a": 1}):
        with pytest.raises(TypeError, match=r"must return func\.HttpResponse or str"):
            http_result(unsendable)


def test_binding_json_is_accepted_by_the_sdk_client_and_links_point_at_this_host() -> None:
    links = ClientLinks(base_url="http://127.0.0.1:7171", hub_name="MyHub")
    client = df.DurableOrchestrationClient(links.binding_json())
    request = func.HttpRequest("POST", "http://127.0.0.1:7171/api/start", body=b"")
    response = client.create_check_status_response(request, "abc123")
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert body["statusQueryGetUri"] == (
        "http://127.0.0.1:7171/runtime/webhooks/durabletask/instances/abc123?taskHub=MyHub&connection=Storage"
    )
    assert body["sendEventPostUri"].endswith(
        "/instances/abc123/raiseEvent/{eventName}?taskHub=MyHub&connection=Storage"
    )
    assert response.headers["Location"] == body["statusQueryGetUri"]
    assert client._orchestration_bindings.rpc_base_url == "http://127.0.0.1:7171/durabletask/"
