"""A plugin whose import fails, as when it needs a package that is not installed."""

raise ImportError("mlestar-broken-plugin needs the 'turbo_trees' package; pip install turbo-trees")
