"""`borderfuse demo`: the development broker, the simulator and the service together, live in the terminal."""
