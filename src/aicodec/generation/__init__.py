"""Generation: the prompts, the material they show and the calls that write new candidates."""
