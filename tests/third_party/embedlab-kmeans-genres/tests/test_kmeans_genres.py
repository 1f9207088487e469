"""The plugin's own tests, as its author would write them with embedlab.testing."""

import json

import embedlab
from embedlab.testing import assert_planted_found, invoke, synthetic_run


def test_finds_the_planted_genres_and_not_the_shuffled_ones():
    check = assert_planted_found("kmeans-genres", "ami", above=0.8, control_below=0.2)
    assert check.planted > 0.8


def test_chooses_the_planted_number_of_genres():
    [item] = [r for r in embedlab.analyze(synthetic_run(), ["kmeans-genres"]) if r.table == "item"]
    assert item.metrics["k"] == item.metrics["categories"] == 3
    assert item.headline == ["ami", "k"] and len(item.figures) == 1


def test_switch_and_command_line(embedlab_run):
    helped = invoke(["analyze", "--help"])
    assert "--kmeans-normalize / --no-kmeans-normalize" in helped.output
    done = invoke(["analyze", embedlab_run, "--only", "kmeans-genres", "--no-kmeans-normalize", "--json"])
    assert done.exit_code == 0, done.output
    item = [r for r in json.loads(done.stdout)["results"] if r["table"] == "item"][0]
    assert item["error"] is None and item["metrics"]["ami"] > 0.5
