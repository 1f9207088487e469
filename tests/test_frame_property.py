"""EmbeddingTable.frame is a property (as .bias and .count are); the method call still works,
with a deprecation warning naming the new form."""

import pandas as pd
import pytest

from embedlab.deprecations import EmbedlabDeprecationWarning


def test_frame_is_a_property_and_the_old_call_warns(synthetic_run):
    import embedlab

    synthetic_run = embedlab.load_run(synthetic_run)
    table = synthetic_run.table(synthetic_run.table_names[0])
    frame = table.frame
    assert isinstance(frame, pd.DataFrame) and list(frame.columns[:2]) == ["key", "label"]
    assert frame["key"].tolist() == list(table.keys)
    derived = frame.head(3)
    assert type(derived) is pd.DataFrame  # nothing derived is callable by accident
    with pytest.warns(EmbedlabDeprecationWarning, match=r"table\.frame\(\)"):
        called = table.frame()
    pd.testing.assert_frame_equal(pd.DataFrame(frame), called)
