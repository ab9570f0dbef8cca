"""The plugin's own test (run with the plugin installed): zoo builds and checks every card and recipe."""
import zoo.testing


def test_every_acme_card_and_recipe_builds_and_runs():
    zoo.testing.check_plugin("acme")
