"""Planners on top of the cost model: SpecPrefill, MagicDec speculative decoding, quality,
recommend and capacity. They return typed results that the CLI, the app and reports render."""
