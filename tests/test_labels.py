"""Figure labels: user text cannot form tags, and reads as typed in plotly (which does not decode &quot;)."""

from gpt2atlas.viz.labels import escape, token_label, token_labels


def test_tags_are_inert_and_quotes_stay_quotes():
    assert token_label('"/>') == '"/&gt;'
    assert escape("<script>alert('x')</script> & \"y\"") == "&lt;script&gt;alert('x')&lt;/script&gt; &amp; \"y\""


def test_whitespace_is_visible_and_nothing_is_empty():
    assert token_labels([" the", "\n", ""], numbered=True) == ["0:·the", "1:↵", "2:∅"]


def test_markdown_readings_keep_apostrophes_readable_and_tags_inert():
    from gpt2atlas.report.markdown import md_escape

    text = md_escape("the logit lens's top-1 is 'he' <script>x</script> #1")
    assert "&#x27;" not in text and "'he'" in text  # an entity would lose to the backslash before its '#'
    assert "<script>" not in text and "&lt;script&gt;" in text and "\\#1" in text
