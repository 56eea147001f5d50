"""The package's shape: public names, the namespace portion, the error tree."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import neuroglia.data.redis as package
from neuroglia.data.redis import exceptions

SRC = Path(__file__).resolve().parents[2] / "src"


def test_all_is_sorted_and_unique() -> None:
    assert package.__all__ == sorted(package.__all__)
    assert len(package.__all__) == len(set(package.__all__))


def test_every_public_name_imports() -> None:
    fresh = importlib.import_module("neuroglia.data.redis")
    for name in fresh.__all__:
        assert getattr(fresh, name) is not None, name
        namespace: dict[str, object] = {}
        exec(f"from neuroglia.data.redis import {name}", namespace)
        assert namespace[name] is getattr(fresh, name)


def test_the_names_the_page_imports_exist() -> None:
    for name in ("RedisRepository", "RedisConfig", "RedisHashRepository", "ConnectionPoolConfig",
                 "SerializationStrategy", "CacheException", "LockTimeoutError"):  # fmt: skip
        assert name in package.__all__, name


def test_namespace_portion_has_no_parent_init() -> None:
    assert (SRC / "neuroglia" / "data" / "redis" / "__init__.py").is_file()
    assert not (SRC / "neuroglia" / "__init__.py").exists()
    assert not (SRC / "neuroglia" / "data" / "__init__.py").exists()
    assert not (SRC / "neuroglia" / "hosting").exists()
    assert not (SRC / "neuroglia" / "dependency_injection").exists()


def test_py_typed_marker_ships() -> None:
    assert (SRC / "neuroglia" / "data" / "redis" / "py.typed").is_file()


def error_classes() -> list[type[BaseException]]:
    # Delivery (an enum the errors carry) is exported next to them.
    found = [getattr(exceptions, name) for name in exceptions.__all__]
    return [obj for obj in found if issubclass(obj, BaseException)]


def test_exceptions_module_all_is_sorted() -> None:
    assert exceptions.__all__ == sorted(exceptions.__all__)
    for name in exceptions.__all__:
        assert name in package.__all__, name
        assert getattr(package, name) is getattr(exceptions, name)


@pytest.mark.parametrize("error", error_classes(), ids=lambda e: e.__name__)
def test_every_exception_subclasses_cache_exception(error: type[BaseException]) -> None:
    assert issubclass(error, exceptions.CacheException)
    assert inspect.getdoc(error)


def test_every_exception_class_in_the_package_is_in_the_tree() -> None:
    raised = [
        obj
        for obj in vars(package).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    ]
    assert raised
    for cls in raised:
        assert issubclass(cls, exceptions.CacheException), cls


def test_the_tree_shape() -> None:
    e = exceptions
    assert issubclass(e.CircuitOpenError, e.CacheUnavailableError)
    assert issubclass(e.CacheTimeoutError, e.CacheUnavailableError)
    assert issubclass(e.CachePermissionError, e.CacheCommandError)
    assert issubclass(e.InvalidArgumentError, e.CacheCommandError)
    assert issubclass(e.InvalidArgumentError, ValueError)
    assert issubclass(e.ConfigurationError, ValueError)
    for lock_error in (e.LockTimeoutError, e.LockNotOwnedError, e.LockLostError):
        assert issubclass(lock_error, e.LockError)
    for sibling in (e.CacheCommandError, e.SerializationError, e.ConfigurationError, e.LockError):
        assert not issubclass(sibling, e.CacheUnavailableError)
    assert not issubclass(e.CacheUnavailableError, e.CacheCommandError)


def test_the_tree_is_drawn_in_the_docstring() -> None:
    doc = exceptions.__doc__ or ""
    for name in exceptions.__all__:
        assert name in doc, name
