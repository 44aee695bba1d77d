"""The label codes' tokens as scoring reads them: the prefix tree of the multi-token codes (one pass reads them all),
the per-path plan (the fallback where a patched attention drops a custom mask), and codes that begin another read
with the answer's end token."""

from __future__ import annotations

import numpy as np


class CodeTree:
    """The prefix tree of the multi-token codes, as one pass reads it: its nodes (each a code's leading tokens, shared
    where codes share them), each node's last token and depth, which nodes each node sees (its ancestors and itself),
    and for each code the nodes and tokens its later log-probabilities are read at."""

    def __init__(self, code_ids: list[list[int]]):
        self.nodes: list[tuple[int, ...]] = sorted({tuple(code[:j]) for code in code_ids
                                                    for j in range(1, len(code))}, key=lambda p: (len(p), p))
        index = {node: i for i, node in enumerate(self.nodes)}
        self.tokens = [node[-1] for node in self.nodes]
        self.depths = np.array([len(node) for node in self.nodes], dtype=np.int64)
        self.sees = np.zeros((len(self.nodes), len(self.nodes)), dtype=bool)
        for i, node in enumerate(self.nodes):
            for j in range(1, len(node) + 1):
                self.sees[i, index[node[:j]]] = True
        self.reads = {k: ([index[tuple(code[:j])] for j in range(1, len(code))], code[1:])
                      for k, code in enumerate(code_ids) if len(code) > 1}


def ended_where_prefix(code_ids: list[list[int]], end: int | None) -> list[list[int]]:
    """Codes whose tokens begin another code ('1' and '12', 'credit' and 'creditLimit') read with the answer's end
    token after them: the probability of answering that code and stopping, not of every answer that starts so."""
    if end is None:
        return code_ids
    return [ids + [end] if any(len(o) > len(ids) and o[:len(ids)] == ids for o in code_ids) else ids
            for ids in code_ids]


def code_paths(code_ids: list[list[int]]) -> list[tuple[tuple[int, ...], list[int]]]:
    """The prefix tree's passes for multi-token codes: (path, codes it serves). A code's later tokens are read after
    feeding its leading tokens; codes whose leading tokens lie along one path share that path's pass, so 151 codes
    cost one pass per distinct path, not one each (single-token codes: none at all)."""
    leads = {tuple(code[:-1]) for code in code_ids if len(code) > 1}
    longest = sorted(p for p in leads if not any(q != p and q[:len(p)] == p for q in leads))
    plan, served = [], set()
    for path in longest:
        mine = [k for k, code in enumerate(code_ids)
                if len(code) > 1 and k not in served and tuple(code[:-1]) == path[:len(code) - 1]]
        served.update(mine)
        plan.append((path, mine))
    return plan
