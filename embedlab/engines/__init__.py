"""The engines: the work behind commands and the Python API (compare, predict, run groups and
their replicates, multi-run stability). The CLI and the package root call them; they never
print to a terminal on their own or read command-line flags."""
