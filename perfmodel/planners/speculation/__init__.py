"""The speculation layer under every planner: the helper model's deployment, its acceptance
basis and its memory beside the target (deploy, acceptance, drafts). Planners call these;
nothing else decides them."""
