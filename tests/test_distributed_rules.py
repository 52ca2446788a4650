"""CKPT014 / CKPT015 / CKPT053 beyond their own examples: rank tests in the spellings real
code uses, names reached through aliases, helpers and nested functions."""

from __future__ import annotations

import pytest

from tests.helpers import check

DCP = "import os\nimport torch\nimport torch.distributed as dist\nimport torch.distributed.checkpoint as dcp\n\n\n"


def codes(source, code):
    _, diags, _ = check(source, [code])
    assert not [d for d in diags if d.code.startswith("E9")], diags
    return [d for d in diags if d.code == code]


def guarded_save(test: str) -> str:
    return DCP + f"def save(state, args, accelerator, trainer, rank, self=None):\n    if {test}:\n" \
                 "        dcp.save(state, checkpoint_id=args.out)\n"


@pytest.mark.parametrize("test", [
    "rank == 0",
    "0 == rank",
    "dist.get_rank() == 0",
    "dist.get_rank(group) != 0",
    "int(os.environ['LOCAL_RANK']) == 0",
    "os.environ.get('RANK') == '0'",
    "getattr(args, 'rank', 0) == 0",
    "args.local_rank in [-1, 0]",
    "args.local_rank not in (-1, 0)",
    "rank > 0",
    "rank >= 1",
    "not rank",
    "rank == 0 and args.step % 100 == 0",
    "args.distributed is False or rank == 0",
    "rank in args.saving_ranks",
    "accelerator.is_main_process",
    "accelerator.is_local_main_process",
    "not accelerator.is_main_process",
    "trainer.is_global_zero",
    "self.is_world_process_zero()",
    "is_main_process()",
    "xm.is_master_ordinal()",
    "args.master_process",
    "self.global_rank == args.src_rank",
])
def test_rank_tests_fire(test):
    assert len(codes(guarded_save(test), "CKPT014")) == 1, test


@pytest.mark.parametrize("test", [
    "args.local_rank != -1",  # is this run distributed? every rank agrees
    "args.local_rank == -1",
    "rank is not None",
    "rank >= 0",
    "rank < args.world_size",
    "dist.is_initialized()",
    "args.world_size > 1",
    "model_on_rank",  # a flag the name does not explain
    "args.rank_id not in state",
    "args.use_dcp",
    "args.lora_rank > 0",  # the rank of a matrix, not of a process
    "args.low_rank",
    "tf.rank(weight) == 1",
    "args.pred.shape.rank > 1",
    "os.environ.get('RANK')",  # is the variable set? on every rank
    "rank != args.weight.shape[0]",
])
def test_other_tests_do_not_fire(test):
    assert codes(guarded_save(test), "CKPT014") == [], test


def test_early_return_and_continue():
    src = DCP + "def save(states, rank):\n    for state in states:\n        if rank != 0:\n            continue\n" \
                "        dcp.save(state, checkpoint_id='c')\n"
    assert len(codes(src, "CKPT014")) == 1
    # a return under a rank test that comes after the call does not guard it
    src = DCP + "def save(state, rank):\n    dcp.save(state, checkpoint_id='c')\n    if rank != 0:\n        return\n" \
                "    print('saved')\n"
    assert codes(src, "CKPT014") == []


@pytest.mark.parametrize("head,call", [
    ("import torch.distributed.checkpoint as C\n", "C.save(state, checkpoint_id='c')"),
    ("from torch.distributed.checkpoint import save as dcp_save\n", "dcp_save(state, checkpoint_id='c')"),
    ("from torch.distributed.checkpoint.state_dict_saver import async_save\n", "async_save(state, checkpoint_id='c')"),
    ("import torch\n", "torch.distributed.checkpoint.load_state_dict(state, reader)"),
    ("from torch.distributed import checkpoint\n", "checkpoint.load(state, checkpoint_id='c')"),
    ("from torch.distributed.fsdp.fully_sharded_data_parallel import FullyShardedDataParallel as F\n",
     "F.full_optim_state_dict(model, optim)"),
])
def test_aliases_resolve_by_qualified_name(head, call):
    src = head + f"\n\ndef save(state, model, optim, rank, reader):\n    if rank == 0:\n        {call}\n"
    assert len(codes(src, "CKPT014")) == 1


@pytest.mark.parametrize("src", [
    # a function of our own named like DCP's
    "def save(state, checkpoint_id):\n    pass\n\n\nif rank == 0:\n    save(state, checkpoint_id='c')\n",
    # a parameter that shadows the module name
    "def go(dcp, state, rank):\n    if rank == 0:\n        dcp.save(state, checkpoint_id='c')\n",
    # torch.save is not a collective
    "import torch\n\nif rank == 0:\n    torch.save(state, 'c.pt')\n",
])
def test_lookalikes_do_not_fire(src):
    assert codes(src, "CKPT014") == []


def test_nested_function_called_under_a_guard():
    src = DCP + "def train(state, rank):\n    def checkpoint():\n        dcp.save(state, checkpoint_id='c')\n\n" \
                "    if rank == 0:\n        checkpoint()\n"
    hits = codes(src, "CKPT014")
    assert len(hits) == 1 and "in `checkpoint`, called under `if rank == 0` (line 11)" in hits[0].help


def test_nested_function_called_on_every_rank():
    src = DCP + "def train(state, rank):\n    def checkpoint():\n        dcp.save(state, checkpoint_id='c')\n\n" \
                "    checkpoint()\n    if rank == 0:\n        print('saved')\n"
    assert codes(src, "CKPT014") == []


def test_helpers_two_calls_deep_but_not_three():
    body = "def a(state):\n    dcp.save(state, checkpoint_id='c')\n\n\ndef b(state):\n    a(state)\n\n\n"
    two = DCP + body + "if dist.get_rank() == 0:\n    b(state)\n"
    assert len(codes(two, "CKPT014")) == 1
    three = DCP + body + "def c(state):\n    b(state)\n\n\nif dist.get_rank() == 0:\n    c(state)\n"
    assert codes(three, "CKPT014") == []


def test_a_method_of_another_class_is_not_a_caller():
    src = DCP + "class A:\n    def save(self, state):\n        dcp.save(state, checkpoint_id='c')\n\n\n" \
                "class B:\n    def save(self, state):\n        pass\n\n    def hook(self, state, rank):\n" \
                "        if rank == 0:\n            self.save(state)\n"
    assert codes(src, "CKPT014") == []


def test_fsdp_state_dict_on_every_rank_is_fine():
    src = "from torch.distributed.fsdp import FullyShardedDataParallel as FSDP\n\n\n" \
          "def save(net, rank):\n    model = FSDP(net)\n    state = model.state_dict()\n" \
          "    if rank == 0:\n        torch.save(state, 'm.pt')\n"
    assert codes(src, "CKPT014") == []


# --- CKPT015 ------------------------------------------------------------------------------------
FSDP2 = "import io\nimport torch\nfrom torch.distributed._composable.fsdp import fully_shard\n\n\n"


def test_fully_shard_through_its_private_path():
    src = FSDP2 + "def save(model):\n    fully_shard(model)\n    torch.save(model.state_dict(), 'm.pt')\n"
    assert len(codes(src, "CKPT015")) == 1


def test_saved_before_sharding_or_into_memory_or_per_rank():
    before = FSDP2 + "def save(model):\n    torch.save(model.state_dict(), 'm.pt')\n    fully_shard(model)\n"
    memory = FSDP2 + "def save(model):\n    fully_shard(model)\n    buf = io.BytesIO()\n" \
                     "    torch.save(model.state_dict(), buf)\n"
    per_rank = FSDP2 + "def save(model, folder, rank):\n    fully_shard(model)\n" \
                       "    name = f'shard-{rank}.pt'\n    path = folder + name\n    torch.save(model.state_dict(), path)\n"
    other = FSDP2 + "def save(model, ema):\n    fully_shard(model)\n    torch.save(ema.state_dict(), 'ema.pt')\n"
    for src in (before, memory, per_rank, other):
        assert codes(src, "CKPT015") == [], src


def test_sharded_self_attribute_in_another_method():
    src = FSDP2 + "class Trainer:\n    def setup(self):\n        fully_shard(self.model)\n\n" \
                  "    def save(self, path):\n        torch.save({'model': self.model.state_dict()}, path)\n"
    assert len(codes(src, "CKPT015")) == 1


def test_set_state_dict_type_earlier_in_the_function():
    src = "import torch\nfrom torch.distributed.fsdp import FullyShardedDataParallel as FSDP, StateDictType\n\n\n" \
          "def save(model):\n    FSDP.set_state_dict_type(model, StateDictType.SHARDED_STATE_DICT)\n" \
          "    torch.save(model.state_dict(), 'm.pt')\n"
    hits = codes(src, "CKPT015")
    assert len(hits) == 1 and "`SHARDED_STATE_DICT` (line 6)" in hits[0].help


# --- CKPT053 ------------------------------------------------------------------------------------
def roundtrip(between: str) -> str:
    return "import torch\nimport torch.distributed as dist\n\n\ndef go(model, rank, trainer, path):\n" \
           "    if rank == 0:\n        torch.save(model.state_dict(), path)\n" \
           f"    {between}\n    model.load_state_dict(torch.load(path, map_location='cpu'))\n"


@pytest.mark.parametrize("between", [
    "torch.distributed.barrier()",
    "dist.monitored_barrier()",
    "trainer.strategy.barrier()",
    "dist.broadcast_object_list([path], src=0)",
])
def test_any_rank_sync_counts_as_a_barrier(between):
    assert codes(roundtrip(between), "CKPT053") == []


@pytest.mark.parametrize("between", ["torch.cuda.synchronize()", "print('saved')"])
def test_device_sync_is_not_a_barrier(between):
    assert len(codes(roundtrip(between), "CKPT053")) == 1


def test_load_in_another_function_or_before_the_save():
    other = "import torch\n\n\ndef save(model, rank, path):\n    if rank == 0:\n        torch.save(model.state_dict(), path)\n\n\n" \
            "def load(model, path):\n    model.load_state_dict(torch.load(path, map_location='cpu'))\n"
    before = "import torch\n\n\ndef go(model, rank, path):\n    sd = torch.load(path, map_location='cpu')\n" \
             "    if rank == 0:\n        torch.save(sd, path)\n"
    for src in (other, before):
        assert codes(src, "CKPT053") == []


def test_ckpt053_is_opt_in():
    from ckptlint.rules import get_rule

    assert get_rule("CKPT053").default_enabled is False
    _, diags, _ = check(roundtrip("pass"))
    assert not [d for d in diags if d.code == "CKPT053"]
