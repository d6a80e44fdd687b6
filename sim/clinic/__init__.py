"""A whole clinic in the simulator: patients, gates, the hub, and what each gate showed."""
