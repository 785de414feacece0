"""A local stand-in for the Anthropic Messages API, so the real Claude Code runs against the lab offline.

Scenario files (lab/scenarios/*.yaml) script its answers turn by turn; `python -m labctl.modelstub` serves
them (the lab's `model-stub` service); `labctl claude --scenario NAME` runs the pinned client against it.
"""
