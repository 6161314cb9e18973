"""The improve loop's parts: compare two evaluations, vote@N, probes and gates, mining verified samples.

Each module is a small set of functions over rows and tasks; the commands (`crucible compare`,
`crucible mine`, ...) read files and turn these modules' errors into usage errors.
"""
