"""Engineers the lm_head rows of [SEG] and </s> so that the fixture conversations answer like LISA:
[SEG] at chosen early steps, </s> after a long answer, and never either elsewhere.

A row's logit at a step is row . hidden(step), and the steps before a step do not depend on it
unless [SEG] or </s> won there. So: simulate the greedy conversation, find the first step where
either row does the wrong thing, pin the row's logit at that step (win: top + WIN, lose: top -
LOSE) and solve each row as the least change from its random start meeting all pinned values;
repeat until the whole conversation follows the plan. Pins recorded on a path that later changed
are dropped. The other rows stay random; seeds are picked so their top-1/top-2 gaps are wide.
"""
import torch

from lisa import build_prompt, tokenizer_image_token

WIN = 1.5
LOSE = 1.5


def _bf16(row):
    return row.to(torch.bfloat16).to(torch.float32)


class Conversation:
    """Greedy turns with a KV cache (same tokens as the reference's cache-free loop: margins are wide)."""

    def __init__(self, model, image_features, questions, template='llava_v1'):
        self.model, self.features, self.questions, self.template = model, image_features, questions, template

    def run(self, limits):
        m, history, turns = self.model, [], []
        for question, limit in zip(self.questions, limits):
            prompt_ids = tokenizer_image_token(m.tokenizer, build_prompt(self.template, history + [(question, None)]))
            cache = {}
            logits, hidden = m.llama.forward_cached(m.embed_prompt(prompt_ids, self.features), cache)
            tokens, step_logits, step_hidden = [], [], []
            while True:
                token = int(torch.argmax(logits[-1]))
                tokens.append(token)
                step_logits.append(logits[-1])
                step_hidden.append(hidden[-1])
                if token == m.eos_id or len(tokens) >= limit:
                    break
                logits, hidden = m.llama.forward_cached(m.llama.embed([token]), cache)
            turns.append({'prompt_ids': prompt_ids, 'tokens': tokens,
                          'logits': torch.stack(step_logits), 'hidden': torch.stack(step_hidden)})
            history.append((question, m.answer_text(tokens)))
        return turns


class RowSolver:
    def __init__(self, start):
        self.start = start.double()
        self.pins = {}

    def pin(self, key, hidden, value):
        self.pins[key] = (hidden.double(), float(value))

    def drop_after(self, key):
        self.pins = {k: v for k, v in self.pins.items() if k <= key}

    def row(self):
        if not self.pins:
            return _bf16(self.start.float())
        hs = torch.stack([h for h, _ in self.pins.values()])
        values = torch.tensor([v for _, v in self.pins.values()], dtype=torch.float64)
        gram = hs @ hs.T + 1e-9 * torch.eye(len(hs), dtype=torch.float64)
        row = self.start + hs.T @ torch.linalg.solve(gram, values - hs @ self.start)
        return _bf16(row.float())


def _rival(logits, exclude):
    masked = logits.clone()
    masked[list(exclude)] = float('-inf')
    return float(masked.max())


def first_violation(turns, plan, seg_id, eos_id):
    """(key, row, want) of the first step where [SEG] or </s> misbehaves, or None."""
    for t, turn in enumerate(turns):
        seg_steps, eos_step = plan[t]
        for s in range(len(turn['tokens'])):
            logits = turn['logits'][s]
            top = _rival(logits, (seg_id, eos_id))
            key = (t, s)
            want_seg, want_eos = s in seg_steps, s == eos_step
            if want_seg and logits[seg_id] < top + WIN / 2:
                return key, 'seg', top + WIN
            if want_eos and logits[eos_id] < top + WIN / 2:
                return key, 'eos', top + WIN
            if not want_seg and logits[seg_id] > top - LOSE / 2:
                return key, 'seg', top - LOSE
            if not want_eos and logits[eos_id] > top - LOSE / 2:
                return key, 'eos', top - LOSE
    return None


def engineer(model, image_features, questions, plan, max_rounds=80):
    """plan: per turn (set of [SEG] steps, </s> step). Rewrites lm_head rows in model.weights."""
    lm_head = model.weights['lm_head.weight']
    solvers = {'seg': RowSolver(lm_head[model.seg_id].clone()), 'eos': RowSolver(lm_head[model.eos_id].clone())}
    ids = {'seg': model.seg_id, 'eos': model.eos_id}
    conversation = Conversation(model, image_features, questions)
    limits = [eos + 1 for _, eos in plan]
    for _ in range(max_rounds):
        turns = conversation.run(limits)
        found = first_violation(turns, plan, model.seg_id, model.eos_id)
        if found is None:
            return turns
        key, which, value = found
        for solver in solvers.values():
            solver.drop_after(key)
        solvers[which].pin(key, turns[key[0]]['hidden'][key[1]], value)
        lm_head[ids[which]] = solvers[which].row()
    raise RuntimeError('the [SEG]/</s> rows could not be engineered for this seed; try another')


def margins(turns):
    out = []
    for turn in turns:
        top2 = torch.topk(turn['logits'], 2, dim=-1).values
        out.extend((top2[:, 0] - top2[:, 1]).tolist())
    return out
