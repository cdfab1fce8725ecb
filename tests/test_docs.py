"""The README documents every setting Rex reads (the table is the user's reference)."""

from pathlib import Path

from core.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    for name in Settings.model_fields:
        variable = "DATABASE_URL" if name == "database_url" else f"REX_{name.upper()}"
        assert f"| `{variable}` |" in README, f"{variable} is missing from the README table"
