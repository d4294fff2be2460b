"""The report layer: what every MASON report shares (train, evaluation, export, curation, tuning).

`format` has numbers, durations, Markdown tables and strict JSON; `page` the HTML page's stylesheet and
inline images; `charts` the matplotlib figure style. Stages write their own reports with these; `mason
report` reads what they wrote.
"""
