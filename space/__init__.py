"""The solution space: what a solution script is made of (block specs, model families, feature operations), how a
spec renders into a runnable script, and the operations that change one block. The heuristic policy, the LLM
policies' action formats and rl/ all speak it; it stands on core/ only."""
