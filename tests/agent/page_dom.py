#!/usr/bin/env python3
# What a user sees on the fleet page, read from the DOM a browser built (stdin): one JSON
# object with the hosts table, the graph's nodes and edges, liveness, history changes, and
# counts of script and img elements and of event-handler attributes (remote text must never
# become markup).
import json
import sys
from html.parser import HTMLParser


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out = {"scripts": 0, "imgs": 0, "handlers": 0, "live": None, "rows": {}, "errors": {},
                    "nodes": [], "edges": [], "liveness": {}, "changes": {}, "title": ""}
        self.stack = []
        self.row = None
        self.detail = None
        self.cell = None
        self.text = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append(tag)
        # an event handler attribute anywhere would be remote text turned into script
        self.out["handlers"] += sum(1 for k, _ in attrs if k.startswith("on"))
        if tag == "html":
            self.out["live"] = a.get("data-live")
        elif tag == "script":
            self.out["scripts"] += 1
        elif tag == "img":
            self.out["imgs"] += 1
        elif tag == "tr" and a.get("class") == "host":
            self.row = a.get("data-host")
            self.out["rows"][self.row] = a.get("data-phase")
        elif tag == "td" and self.row and a.get("class") == "error":
            self.cell, self.text = "error", ""
        elif tag == "g" and a.get("class") == "node":
            self.out["nodes"].append(a.get("data-host"))
        elif tag == "line" and a.get("class") == "edge":
            self.out["edges"].append([a.get("data-from"), a.get("data-to")])
        elif tag == "article":
            self.detail = a.get("data-host")
        elif tag == "li" and a.get("data-service") is not None and self.detail:
            self.out["liveness"].setdefault(self.detail, {})[a["data-service"]] = a.get("data-up") == "1"
        elif tag == "pre" and a.get("class") == "changes" and self.detail:
            self.cell, self.text = "changes", ""
        elif tag == "title":
            self.cell, self.text = "title", ""

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag == "td" and self.cell == "error":
            self.out["errors"][self.row] = self.text
            self.cell = None
        elif tag == "pre" and self.cell == "changes":
            self.out["changes"].setdefault(self.detail, []).append(self.text)
            self.cell = None
        elif tag == "title" and self.cell == "title":
            self.out["title"] = self.text
            self.cell = None
        elif tag == "tr":
            self.row = None
        elif tag == "article":
            self.detail = None

    def handle_data(self, data):
        if self.cell:
            self.text += data


p = Page()
p.feed(sys.stdin.read())
json.dump(p.out, sys.stdout)
