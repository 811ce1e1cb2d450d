"""Pages of headless Chromium for the browser tests."""

from __future__ import annotations

from typing import Any


def new_page(browser: Any, **context: Any) -> Any:
    """A page of a fresh context (its own sessionStorage) sized like a laptop screen."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}, **context).new_page()
    page.set_default_timeout(30_000)
    return page


# Roles of the controls a person operates; each needs a name a screen reader can say.
CONTROL_ROLES = frozenset(
    {
        "button",
        "checkbox",
        "combobox",
        "listbox",
        "radio",
        "searchbox",
        "slider",
        "spinbutton",
        "switch",
        "textbox",
    }
)


def inaccessible_controls(page: Any) -> list[str]:
    """The controls on `page` a person cannot name or reach by keyboard, as Chromium's
    accessibility tree has them: an empty accessible name, or (enabled and) not focusable.
    Each as the problem, the role and the element's outer HTML (shortened)."""
    session = page.context.new_cdp_session(page)
    try:
        problems = []
        for node in session.send("Accessibility.getFullAXTree")["nodes"]:
            role = node.get("role", {}).get("value")
            if node.get("ignored") or role not in CONTROL_ROLES:
                continue
            states = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
            unnamed = not str(node.get("name", {}).get("value", "")).strip()
            unreachable = not states.get("focusable") and not states.get("disabled")
            if unnamed or unreachable:
                problem = "no name" if unnamed else "not focusable"
                problems.append(f"{problem}, {role}: {outer_html(session, node)}")
        return problems
    finally:
        session.detach()


def outer_html(session: Any, node: dict[str, Any]) -> str:
    """The start of the outer HTML of an accessibility node's element."""
    element = session.send("DOM.resolveNode", {"backendNodeId": node["backendDOMNodeId"]})
    result = session.send(
        "Runtime.callFunctionOn",
        {
            "objectId": element["object"]["objectId"],
            "functionDeclaration": "function() { return this.outerHTML.slice(0, 160); }",
            "returnByValue": True,
        },
    )
    return str(result["result"]["value"])
