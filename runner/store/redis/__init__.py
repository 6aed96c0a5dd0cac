"""Redis: the store's verbs over the Lua scripts (lua/), the key names and the
stream of transitions."""
