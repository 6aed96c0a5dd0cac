"""`runner run`: the supervisor, its services (one module each) and the pools that run jobs."""
