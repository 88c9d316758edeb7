# atdata developer tasks (https://github.com/casey/just)

# run the test suite (the same command CI and the README use)
test *args:
    uv run pytest {{args}}

# lint and format check
lint:
    uv run ruff check src tests benchmarks examples
    uv run ruff format --check src tests benchmarks examples

# type-check the package (mypy; config in pyproject.toml [tool.mypy]; CI runs it)
typecheck:
    uv run mypy

# run the benchmarks and print the comparison tables
bench:
    uv run python benchmarks/run.py

# check the docs' examples (doctests) and build nothing else
docs:
    uv run pytest --doctest-modules src -q

# install the git hooks
hooks:
    git config core.hooksPath .githooks
