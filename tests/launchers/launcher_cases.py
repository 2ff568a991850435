"""Constants shared by the launcher tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPONENTS_FILE = REPO / "launchers" / "components.py"
COMPONENT_NAMES = (
    "prepare", "train_supernet", "train", "search", "rank_study", "retrain", "final", "pipeline",
    "embedding_benchmark",
)
# The `nasrec` command words a component runs, where they are not its role's name.
COMMAND_WORDS = {"embedding_benchmark": ["bench", "embeddings"]}

# Spaces, a command separator, command substitutions, both quotes, variables, TorchX macro
# syntax, a backslash, pipes and redirections, a tab and a newline.
HOSTILE = "a b; $(touch pwned) `touch pwned` 'sq' \"dq\" $HOME ${app_id} $$ \\ | > out & \t\nz"
