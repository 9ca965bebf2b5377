"""County summaries: the figures (figures.py), their charts as SVG (charts.py) and the
CSV and XLSX exports (exports.py). No Flask."""
