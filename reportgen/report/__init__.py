"""Report stage: summaries, statistics, findings, checklist, plots and the rendered documents."""
