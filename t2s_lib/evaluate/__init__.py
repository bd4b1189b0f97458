"""Downstream evaluation: 5-NN (the Task2Sim reward), linear probing and fine-tuning (reference 7.2).

>>> from t2s_lib.evaluate import EvalOptions, evaluate_backbone
>>> row = evaluate_backbone("runs/cpu/pretrain/<key>/checkpoint.pt", "digits", EvalOptions(protocol="knn", img_size=64),
...                         results="runs/cpu/evaluate/results.csv")
"""

from .features import Transformed, extract_features
from .hparams import best_hparams
from .knn import knn_accuracy, knn_predict
from .probe import PAPER_GRID, ProbeConfig, grid_search, make_head, stratified_split, train_probe
from .results import append_results, read_results, reward_table, write_reward_table
from .run import PROTOCOLS, EvalOptions, evaluate_backbone, load_eval_backbone, load_finetuned, resolve_task, save_finetuned

__all__ = [
    "EvalOptions", "PAPER_GRID", "PROTOCOLS", "ProbeConfig", "Transformed", "append_results", "best_hparams",
    "evaluate_backbone", "extract_features", "grid_search", "knn_accuracy", "knn_predict", "load_eval_backbone",
    "load_finetuned", "make_head", "read_results", "resolve_task", "reward_table", "save_finetuned",
    "stratified_split", "train_probe", "write_reward_table",
]
