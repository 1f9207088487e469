"""Rendering results for people: the HTML report (the only place HTML is written), terminal summaries, notebook display, the lr-find plot."""
