"""What each stage kind does: inputs (data, upstream stages) -> files in its work dir (TensorFlow)."""

from .cluster import run_cluster, run_cluster_baseline
from .context import StageContext
from .embedding import run_tsne
from .pretrain import run_pretrain
from .scoring import run_evaluate
from .supervised import run_baseline, run_finetune, run_head
from .unroll import run_unroll, run_unroll_baseline

RUNNERS = {"pretrain": run_pretrain, "unroll": run_unroll, "unroll_baseline": run_unroll_baseline, "head": run_head, "finetune": run_finetune, "baseline": run_baseline,
           "evaluate": run_evaluate, "tsne": run_tsne, "cluster": run_cluster,
           "cluster_baseline": run_cluster_baseline}

__all__ = ["RUNNERS", "StageContext"]
