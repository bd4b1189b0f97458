"""t2s_lib: the support library of the Task2Sim reproducible study.

Stages (each a sub-package or module, each reading and writing files with a documented layout):
settings (the 8 simulation parameters), published (the paper's reward table and Task2Vec vectors),
policy (the Task2Sim controller and alternatives), render (synthetic images), tasks and task2vec
(downstream data and embeddings), train / evaluate / cka (backbones and their comparison).
"""

__version__ = "0.1.0"
