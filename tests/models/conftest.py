"""Shared settings for the model-zoo tests."""

from __future__ import annotations

import logging

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread_and_quiet_fake_tensors():
    """Run the zoo tests on one intra-op thread and silence fake-tensor rejection logs.

    The tensors here are tiny, so a second thread only adds synchronisation overhead (and
    contends with other work on small CI machines). ``output_hw`` probes inadmissible sizes
    on purpose; FakeTensorMode logs each rejected op at ERROR level, which is noise here.
    """
    threads = torch.get_num_threads()
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    torch.set_num_threads(1)
    logger.setLevel(logging.CRITICAL)
    yield
    torch.set_num_threads(threads)
    logger.setLevel(level)
