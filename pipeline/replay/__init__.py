"""The scenario runner behind `manage.py run_scenario` (parser + runner)."""
