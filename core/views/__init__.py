"""Views: what the pages show, read from the database and ready to render.

A view is read-only: it opens read sessions only and never writes, never calls Meta and
never imports Streamlit. Each module serves one page or concept — `overview` (an
account's figures and entities), `breakdowns` (the four breakdown tables, their CSVs and
the country map), `activity` (executions, their traces and actions: the Executions
page), `health` (the system's figures) and `rules` (the Rules list: what each rule did,
searched, filtered, sorted and paged). Values come out as frozen dataclasses with money
in major units and its currency; a page renders them and calls nothing else to read.

What a person does — approve, roll back, save a rule — lives with the writes
(`core.actions`, `core.rules`), not here.
"""
