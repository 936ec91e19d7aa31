"""``KameleoonClient``: the public client, a thin shell over the engine, the store and the network."""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from kameleoon import _cookies
from kameleoon._config import KameleoonClientConfig
from kameleoon._engine.decide import OFF, resolve_key
from kameleoon._engine.model import (
    EMPTY_CONFIGURATION,
    Configuration,
    Flag,
)
from kameleoon._engine.parse import ConfigError, parse_configuration_text
from kameleoon._engine.passes import decide_all
from kameleoon._engine.variables import InvalidJsonVariable, VariableDef
from kameleoon._network import tracker as _tracking
from kameleoon._network.config_updates import ConfigUpdater
from kameleoon._network.endpoints import Endpoints
from kameleoon._network.token import TokenSource
from kameleoon._network.tracker import Tracker
from kameleoon._network.transport import Transport, Urllib3Transport
from kameleoon._offline import OfflineTransport
from kameleoon._remote import RemoteData
from kameleoon._visitors.data import DataContext, add_conversion, add_items, count_drops
from kameleoon._visitors.record import Visitor
from kameleoon._visitors.store import VisitorStore
from kameleoon.data import Conversion, CustomData
from kameleoon.exceptions import (
    ConfigException,
    ConfigFileNotFound,
    FeatureEnvironmentDisabled,
    FeatureNotFound,
    FeatureVariableNotFound,
    FeatureVariationNotFound,
    SiteCodeIsEmpty,
)
from kameleoon.types import RemoteVisitorDataFilter, Variable, Variation

__all__ = ["KameleoonClient"]

_MAX_CODE_LENGTH = _cookies.MAX_VISITOR_CODE_LENGTH
_TRACKING_CODE_WINDOW = 5.0  # seconds: assignments newer than this go to the engine tracking code
_CLOSE_TIMEOUT = 5.0  # seconds forget() takes at most (docs/network.md)
_EXIT_TIMEOUT = 2.0  # seconds interpreter exit spends closing every client, together
_ABORT_GRACE = 0.25  # seconds a thread whose request was aborted at close is given to end
_FORK_LOCK_WAIT = 2.0  # seconds a fork waits for a thread to finish updating a visitor record


def _decision(name: str, doc: str, *, flag_too: bool) -> Callable[..., Any]:
    """A decision method of :class:`KameleoonClient`, ``name(visitor_code, feature_key,
    is_unique_identifier=None)``: it returns the visitor's variation key of the flag
    (``flag_too``: the flag and the key, which ``get_feature_variable`` needs).

    The body is written once, here, for both: ``get_feature_variation_key`` is this function
    itself rather than a wrapper calling ``_decide``, which saves a Python call (about a tenth
    of a repeat decision, ``python bench/instructions.py``).
    """

    def decide(
        self: KameleoonClient, visitor_code: Any, feature_key: Any, is_unique_identifier: bool | None = None
    ) -> Any:
        # The hot path of every decision: the checks are inlined, the slow paths raise.
        code: str = visitor_code
        if code.__class__ is not str or not code or len(code) > _MAX_CODE_LENGTH:
            code = _cookies.validate_visitor_code(visitor_code)
        if is_unique_identifier is not None:
            self._unique_identifier_step(code, is_unique_identifier)
        try:
            flag = self._cfg.enabled_by_key[feature_key]  # a subscript costs less than a call of get
        except (KeyError, TypeError):  # an unknown, disabled or unhashable key
            flag = None
        if flag is None:
            flag = self._flag(feature_key)  # raises (outside the except clause: no chaining)
        store = self._store
        visitor = store._visitors.get(code)
        # VisitorStore.get, inlined: a move is queued at most once a second.
        if visitor is not None and visitor.last is not store.now:
            store._touch(code, visitor)
        decide = flag.decide  # a slot: read as an attribute (flag.decide(...) would not specialize)
        entry, rule = decide(visitor, code)
        if entry is None:  # no variation drawn: nothing to record
            if rule is None:  # no rule decided: the default variation (resolve_key, inlined)
                key = flag.default_variation_key
            else:
                if visitor is None:
                    store.get_or_create(code)
                key = resolve_key(flag, entry, rule)
        else:
            # An entry comes with its rule. The assignment is recorded (replacing the previous
            # one of the experiment) as unsent, lock-free: the dict writes are atomic and the
            # unsent mark goes through the store's exposure queue (two threads assigning a new
            # experiment to one visitor at once may share a position; both are then sent
            # together).
            if visitor is None:
                visitor = store.get_or_create(code)
            assigned = visitor.assigned
            experiment_id = rule.experiment_id  # type: ignore[union-attr]
            try:
                previous = assigned.get(experiment_id) if assigned is not None else None
            except TypeError:  # an unhashable experiment id (malformed configuration): not recorded
                previous = experiment_id = None
            if previous is not None:  # unpacked once: fewer steps than four subscripts
                recorded_id, recorded_type, _, position, queued, recorded_entry = previous
                if recorded_entry is entry and queued == store.generation and visitor.extra is None:
                    # A repeat decision (the assignment remembers this very entry, of this rule,
                    # so its variation and rule type too), still waiting to be sent: queued in
                    # the store's current generation (no tracking request built since) by a
                    # decision that also scheduled the visitor; only its time is renewed. Linked
                    # codes share a record but not a schedule: a record with ``extra`` takes the
                    # full path.
                    assigned[experiment_id] = (  # type: ignore[index]
                        recorded_id, recorded_type, time.time(), position, queued, entry
                    )  # fmt: skip
                    return (flag, entry.variation_key) if flag_too else entry.variation_key
            key = entry.variation_key
            variation_id = entry.variation_id
            if experiment_id is not None and variation_id is not None:
                if assigned is None:
                    assigned = visitor.assigned = {}
                # The entry drawn is kept when the visitor code itself was hashed (no mapping
                # identifier): the flag's generated function returns the same decision again
                # without hashing (_engine/passes.py). An entry is a small object of one rule
                # of one configuration: old configurations are freed.
                extra = visitor.extra
                remembered = entry if extra is None or extra.mapping is None else None
                if previous is None:  # a new experiment: the next position (else it keeps its own)
                    position = len(assigned)
                try:
                    assigned[experiment_id] = (
                        variation_id, rule.type, time.time(), position, store.generation, remembered  # type: ignore[union-attr]
                    )  # fmt: skip
                except TypeError:  # an unhashable experiment id, met on a visitor's first assignment
                    pass
                else:
                    store._exposures.append((visitor, experiment_id))  # VisitorStore.note_exposure
                    if store._visitors.get(code) is not visitor:  # rare: no call on the hot path
                        store.settle(code, visitor)
        scheduled = self._tracker._scheduled
        if code not in scheduled:
            if self._tracker._closed or len(scheduled) >= _tracking.MAX_SCHEDULED:
                self._tracker.schedule(code)  # refused, or counted as dropped
            else:
                scheduled[code] = None  # Tracker.schedule, inlined
        return (flag, key) if flag_too else key

    decide.__name__ = name
    decide.__qualname__ = f"KameleoonClient.{name}"
    decide.__doc__ = doc
    if not flag_too:  # the public method shows its documented types (help(), get_type_hints)
        decide.__annotations__ = {
            "visitor_code": "str",
            "feature_key": "str",
            "is_unique_identifier": "bool | None",
            "return": "str",
        }
    return decide


def _printable_ids(experiment_id: Any, variation_id: Any) -> bool:
    """Whether ids from the configuration can be printed into the engine tracking code as they
    are (ints, finite floats, or ``None``): any other value (a string id in a malformed or
    tampered configuration) could inject script into the page, and ``nan`` or ``inf`` would
    stop it; such an assignment is left out."""
    return all(
        value is None or value.__class__ is int or (value.__class__ is float and math.isfinite(value))
        for value in (experiment_id, variation_id)
    )


class KameleoonClient:
    """Decides feature flags and experiments for visitors, and reports what it decided.

    Create clients with :meth:`KameleoonClientFactory.create`. A client can be shared between
    threads; flag decisions never block on the network. Background work (configuration
    updates, tracking) runs on two daemon threads, restarted in a child after ``os.fork()``.
    """

    def __init__(
        self, site_code: str, config: KameleoonClientConfig, *, _transport: Transport | None = None
    ) -> None:
        if not site_code:
            raise SiteCodeIsEmpty("Provided site_code is empty")
        self._site_code = site_code
        self._settings = config
        self._log = config.logger or logging.getLogger("kameleoon")
        configuration = _bootstrap(config.configuration_path)
        self._cfg: Configuration = configuration or EMPTY_CONFIGURATION
        self._has_configuration = configuration is not None
        self._offline = config.offline
        self._update_handler: Callable[[], Any] | None = None
        self._transport = _transport or (
            OfflineTransport(self._log) if config.offline else Urllib3Transport()
        )
        self._endpoints = Endpoints(site_code, config.network_domain, config.environment)
        self._tokens = TokenSource(
            self._endpoints, self._transport, config.client_id, config.client_secret,
            config.default_timeout_second, self._log,
        )  # fmt: skip
        self._store = VisitorStore(config.session_duration_second, config.max_visitors, log=self._log)
        self._exposures_append = self._store._exposures.append
        self._tracker = Tracker(
            self._store, self._current, self._endpoints, self._transport, self._tokens,
            config.tracking_interval_second, config.default_timeout_second, self._log,
            purge_interval=min(60.0, config.session_duration_second),
        )  # fmt: skip
        self._store._on_drop = self._tracker.adopt
        self._updater = ConfigUpdater(
            self._endpoints, self._transport, config.default_timeout_second, config.refresh_interval_second,
            self._install, self._current, self._log,
        )  # fmt: skip
        self._remote = RemoteData(self)
        self._closed = False
        self._pid = os.getpid()
        self._start()
        _register(self)

    # -- lifecycle --------------------------------------------------------------------------
    def _start(self) -> None:
        if self._offline:
            self._updater.first_attempt_done.set()
        else:
            self._updater.start()
        self._tracker.start()

    def _after_fork_in_child(self) -> None:
        """Runs in a forked child: new locks, threads and connections; keep data and config."""
        self._pid = os.getpid()
        self._transport = self._transport  # transports reconnect per process by themselves
        self._store._lock = threading.Lock()
        self._store.data_lock = threading.RLock()
        self._tracker.reset_after_fork()
        self._updater.reset_after_fork()
        if not self._closed:
            self._start()

    def _close(self, timeout: float | None = None) -> None:
        """Stops background work after sending what can be sent: returns within ``timeout``
        seconds (default: 5), which bound the whole close (every thread of the client)."""
        _close_all([self], _CLOSE_TIMEOUT if timeout is None else timeout)

    def _begin_close(self, deadline: float) -> bool:
        """Tells every thread to stop (the tracker sends what it can by ``deadline``); returns
        at once, ``False`` when the client was already closed."""
        if self._closed:
            return False
        self._closed = True
        self._tracker.refuse_later_calls()
        self._updater.request_stop()
        self._tracker.request_stop(deadline)
        return True

    def _finish_close(self, deadline: float) -> None:
        """Waits until ``deadline`` at most for the threads to end, then releases connections,
        which ends a request still in flight (its thread then stops, sending nothing more)."""
        stopped = self._tracker.join(deadline) & self._updater.join(deadline)
        self._transport.close()
        if not stopped:
            grace = time.monotonic() + _ABORT_GRACE
            if not (self._tracker.join(grace) & self._updater.join(grace)):
                self._log.warning(
                    "a background request of the client of site %s could not be ended at close: "
                    "its thread stops when the request's own timeout expires, sending nothing more",
                    self._site_code,
                )

    def _current(self) -> Configuration:
        return self._cfg

    def _install(self, config: Configuration, ts: str | None) -> None:
        first = not self._has_configuration
        if config.data_api_domain is not None:
            self._endpoints.set_data_api_domain(config.data_api_domain)
        self._cfg = config
        self._has_configuration = True
        handler = self._update_handler
        if not first and handler is not None:
            try:
                handler()
            except Exception:  # a user's handler must never break configuration updates
                self._log.exception("the on_update_configuration handler raised")

    # -- readiness --------------------------------------------------------------------------
    def wait_init(self) -> bool:
        """Blocks until the first configuration download finished; ``True`` when a
        configuration is active (``False`` when none could be obtained). Called from an
        ``on_update_configuration`` handler (on the thread that makes that download), it does
        not wait."""
        if not self._updater.is_own_thread():
            self._updater.first_attempt_done.wait()
        return self._has_configuration

    async def wait_init_async(self) -> bool:
        """Awaitable twin of :meth:`wait_init`."""
        import asyncio

        event = self._updater.first_attempt_done
        while not event.is_set() and not self._updater.is_own_thread():
            await asyncio.sleep(0.01)
        return self._has_configuration

    def on_update_configuration(self, handler: Callable[[], Any] | None) -> None:
        """Calls ``handler()`` after every configuration update applied after the first one."""
        self._update_handler = handler

    # -- visitor data -----------------------------------------------------------------------
    def add_data(self, visitor_code: str, *args: Any) -> None:
        """Stores data on the visitor (sent with its next tracking request)."""
        code = _cookies.validate_visitor_code(visitor_code)
        if self._closed:
            self._tracker.refuse_after_close()  # stored for decisions, but never sent
        store = self._store
        visitor = store.get_or_create(code)
        context = DataContext(store, code, visitor, self._cfg, self._log)
        lock = store.data_lock
        lock.acquire()
        try:
            add_items(context, args)
        finally:
            lock.release()
        store.settle(code, visitor)

    def track_conversion(
        self, visitor_code: str, goal_id: int, revenue: float = 0.0, is_unique_identifier: bool | None = None
    ) -> None:
        """Records a conversion of ``goal_id`` and schedules the visitor for tracking."""
        code = _cookies.validate_visitor_code(visitor_code)
        self._unique_identifier_step(code, is_unique_identifier)
        store = self._store
        visitor = store.get_or_create(code)
        with store.data_lock:
            if not add_conversion(visitor, Conversion(goal_id, revenue), unsent=True):
                count_drops(store, 1)
        store.settle(code, visitor)
        self._tracker.schedule(code)

    def flush(
        self, visitor_code: str | None = None, is_unique_identifier: bool | None = None, instant: bool = False
    ) -> None:
        """Schedules the visitor's data for the next tracking request; without a code, every
        visitor holding data. ``instant``: the data present now is sent at once, one request per
        visitor, in the background (the schedule is left as it is). Never waits for the network;
        without a code, every visitor in memory is looked at on the calling thread."""
        if visitor_code is None:
            self._flush_all(instant)
            return
        code = _cookies.validate_visitor_code(visitor_code)
        self._unique_identifier_step(code, is_unique_identifier)
        if instant:
            self._tracker.send_now(code)
        else:
            self._tracker.schedule(code)

    def _flush_all(self, instant: bool) -> None:
        # A record shared by linked codes is reported under the first code that takes it: the
        # record's own code first, as in the reference's visitor map (linked codes join it
        # later), not whichever the store's recency order puts first.
        config = self._cfg
        owners: list[str] = []
        others: list[str] = []
        for code, visitor in zip(*self._store.columns(), strict=True):
            if _has_sendable_data(visitor, config):
                extra = visitor.extra
                (owners if extra is not None and extra.mapping == code else others).append(code)
        if not instant:
            self._tracker.schedule_all(owners + others)
            return
        for code in owners + others:  # one request per visitor, as the reference does
            self._tracker.send_now(code)

    def set_legal_consent(
        self, visitor_code: str, consent: bool, cookies: MutableMapping[str, Any] | None = None
    ) -> None:
        """Records the visitor's legal consent (only relevant when the configuration requires
        it) and updates the visitor-code cookie in ``cookies`` accordingly."""
        code = _cookies.validate_visitor_code(visitor_code)
        store = self._store
        while True:  # written again if the record was dropped meanwhile
            visitor = store.get_or_create(code)
            visitor.extras().consent = bool(consent)
            if store.peek(code) is visitor:
                break
        if cookies is None:
            return
        domain = self._settings.top_level_domain
        if consent:
            _cookies.write_cookie(cookies, code, domain)
        elif self._visitor_code_managed():
            _cookies.expire_cookie(cookies, domain)

    def get_visitor_code(
        self,
        cookies_readonly: Mapping[str, Any] | None = None,
        cookies: MutableMapping[str, Any] | None = None,
        default_visitor_code: str | None = None,
    ) -> str:
        """The visitor code from the ``kameleoonVisitorCode`` cookie, else ``default_visitor_code``,
        else a new random code; written into ``cookies`` (a ``SimpleCookie``) when it is new."""
        # cookies_readonly is read when it is a non-empty mapping (a string or list given by
        # mistake is ignored, as the reference does), else cookies
        source = cookies_readonly if cookies_readonly and isinstance(cookies_readonly, Mapping) else cookies
        existing = _cookies.read_visitor_code(source)
        if existing is not None:
            return _cookies.validate_visitor_code(existing)
        if default_visitor_code is None:
            code = _cookies.generate_visitor_code()
            if cookies is not None and not self._visitor_code_managed():
                _cookies.write_cookie(cookies, code, self._settings.top_level_domain)
            return code
        code = _cookies.validate_visitor_code(default_visitor_code)
        if cookies is not None:
            _cookies.write_cookie(cookies, code, self._settings.top_level_domain)
        return code

    def _consent_given(self, code: str) -> bool:
        visitor = self._store.get(code)
        return not self._cfg.consent_required or (visitor is not None and visitor.consent)

    def _visitor_code_managed(self) -> bool:
        config = self._cfg
        return config.consent_required and not config.has_targeted_delivery_rule

    # -- decisions --------------------------------------------------------------------------
    def is_feature_active(
        self, visitor_code: str, feature_key: str, is_unique_identifier: bool | None = None
    ) -> bool:
        """``True`` when the visitor's variation of the flag is not ``"off"``; ``False`` also when
        the flag is disabled for this environment. Tracks the exposure."""
        try:
            _, key = self._decide(visitor_code, feature_key, is_unique_identifier)
        except FeatureEnvironmentDisabled:
            return False
        return bool(key != OFF)

    if TYPE_CHECKING:  # both made by _decision (above the class): typed here for checkers

        def get_feature_variation_key(
            self, visitor_code: str, feature_key: str, is_unique_identifier: bool | None = None
        ) -> str:
            """The key of the visitor's variation of the flag. Tracks the exposure."""

        def _decide(
            self, visitor_code: Any, feature_key: Any, is_unique_identifier: bool | None = None
        ) -> tuple[Flag, Any]: ...

    else:
        get_feature_variation_key = _decision(
            "get_feature_variation_key",
            "The key of the visitor's variation of the flag. Tracks the exposure.",
            flag_too=False,
        )
        _decide = _decision("_decide", "The flag and the visitor's variation key.", flag_too=True)

    def get_feature_variable(
        self, visitor_code: str, feature_key: str, variable_key: str, is_unique_identifier: bool | None = None
    ) -> Any:
        """The value of ``variable_key`` in the visitor's variation of the flag. Tracks the
        exposure; raises :class:`FeatureVariableNotFound` when the variable does not exist."""
        flag, key = self._decide(visitor_code, feature_key, is_unique_identifier)
        try:  # subscripts, not calls of _get: the hot path (a miss raises below anyway)
            variable: VariableDef | None = flag.variations_by_key[key].by_key[variable_key]
        except (KeyError, TypeError):  # no such variation or variable, or an unhashable key
            variable = None
        if variable is None:
            raise FeatureVariableNotFound(variable_key)
        shared = variable.shared
        return shared.value if shared is not None else self._value(variable)

    def get_feature_variation_variables(
        self, feature_key: str, variation_key: str | None = None
    ) -> dict[str, Any]:
        """The variables of one variation of the flag (``variation_key=None``: its default
        variation), as ``{key: value}``. Nothing is tracked."""
        flag = self._flag(feature_key)
        wanted = flag.default_variation_key if variation_key is None else variation_key
        variation = _get(flag.variations_by_key, wanted)
        if variation is None:
            raise FeatureVariationNotFound(wanted)
        return {variable.key: self._value(variable) for variable in variation.variables}

    def get_active_features(self, visitor_code: str) -> dict[str, Variation]:
        """The variation of every active (not ``"off"``) flag for the visitor, in configuration
        order. Nothing is recorded or tracked."""
        code = _cookies.validate_visitor_code(visitor_code)
        visitor = self._store.get(code)
        config = self._cfg
        active: dict[str, Variation] = {}
        for flag, (entry, rule) in zip(config.enabled_flags, decide_all(config, visitor, code), strict=True):
            if entry is not None:
                key, variation_id = entry.variation_key, entry.variation_id
            else:
                key, variation_id = resolve_key(flag, entry, rule), None
            if key == OFF:
                continue
            variables = self._variables(flag, key)
            active[flag.key] = Variation(key, variation_id, rule.experiment_id if rule else None, variables)
        return active

    def get_active_feature_list_for_visitor(self, visitor_code: str) -> list[str]:
        """Deprecated: the keys of the visitor's active flags (see :meth:`get_active_features`)."""
        self._log.warning("get_active_feature_list_for_visitor is deprecated: use get_active_features")
        code: Any = visitor_code
        if not isinstance(code, str):
            self._log.warning("get_active_feature_list_for_visitor needs a string visitor code")
            return []
        visitor = self._store.get(visitor_code)
        config = self._cfg
        decisions = decide_all(config, visitor, code)
        return [
            flag.key
            for flag, decision in zip(config.enabled_flags, decisions, strict=True)
            if resolve_key(flag, *decision) != OFF
        ]

    def get_feature_list(self) -> list[str]:
        """Every feature key of the configuration, in configuration order."""
        return list(self._cfg.flags)

    def get_engine_tracking_code(self, visitor_code: str) -> str:
        """JavaScript for the Kameleoon engine tag: the visitor's assignments of the last 5 s."""
        parts = ["window.kameleoonQueue=window.kameleoonQueue||[];"]
        visitor = self._store.get(visitor_code) if isinstance(visitor_code, str) else None
        assigned = visitor.assigned if visitor is not None else None
        if assigned:
            now = time.time()
            for experiment_id, assignment in list(assigned.items()):
                variation_id, recent = assignment[0], now - assignment[2] < _TRACKING_CODE_WINDOW
                if recent and _printable_ids(experiment_id, variation_id):
                    parts.append(
                        f"window.kameleoonQueue.push(['Experiments.assignVariation',{experiment_id},{variation_id}]);"
                        f"window.kameleoonQueue.push(['Experiments.trigger',{experiment_id},true]);"
                    )
        return "".join(parts)

    # -- decision internals -----------------------------------------------------------------
    def _flag(self, feature_key: Any) -> Flag:
        flag: Flag | None = _get(self._cfg.flags, feature_key)
        if flag is None:
            raise FeatureNotFound(feature_key)
        if not flag.environment_enabled:
            raise FeatureEnvironmentDisabled(feature_key, self._settings.environment)
        return flag

    def _unique_identifier_step(self, code: str, is_unique_identifier: bool | None) -> None:
        if is_unique_identifier is None:
            return
        self._log.warning("is_unique_identifier is deprecated: add UniqueIdentifier data instead")
        self._store.get_or_create(code)
        self._store.set_unique_identifier(code, bool(is_unique_identifier))

    def _value(self, variable: VariableDef) -> Any:
        try:
            return variable.value()
        except InvalidJsonVariable as e:
            self._log.error("%s: None is returned", e)
            return None

    def _variables(self, flag: Flag, key: Any) -> dict[str, Variable]:
        variation = _get(flag.variations_by_key, key)
        if variation is None:
            return {}
        if variation.shared_public is not None:
            return dict(variation.shared_public)
        return {v.key: v.shared or Variable(v.key, v.type, self._value(v)) for v in variation.variables}

    # -- remote data (network calls on the caller's thread) ---------------------------------
    def get_remote_data(self, key: str, timeout: float | None = None) -> Any:
        """The JSON stored under ``key`` in the Data API (``None`` if absent or on failure)."""
        return self._remote.get_remote_data(key, timeout)

    async def get_remote_data_async(self, key: str, timeout: float | None = None) -> Any:
        return await self._remote.get_remote_data_async(key, timeout)

    def get_remote_visitor_data(
        self,
        visitor_code: str,
        add_data: bool = True,
        timeout: float | None = None,
        data_filter: RemoteVisitorDataFilter | None = None,
        is_unique_identifier: bool | None = None,
    ) -> list[Any]:
        """The visitor's data stored by the Data API (and, with ``add_data``, added locally)."""
        return self._remote.get_remote_visitor_data(
            visitor_code, add_data, timeout, data_filter, is_unique_identifier
        )

    async def get_remote_visitor_data_async(
        self,
        visitor_code: str,
        add_data: bool = True,
        timeout: float | None = None,
        data_filter: RemoteVisitorDataFilter | None = None,
        is_unique_identifier: bool | None = None,
    ) -> list[Any]:
        return await self._remote.get_remote_visitor_data_async(
            visitor_code, add_data, timeout, data_filter, is_unique_identifier
        )

    def get_visitor_warehouse_audience(
        self,
        visitor_code: str,
        custom_data_index: int,
        warehouse_key: str | None = None,
        timeout: float | None = None,
    ) -> CustomData | None:
        """The visitor's warehouse audiences as custom data at ``custom_data_index`` (also stored)."""
        return self._remote.get_visitor_warehouse_audience(
            visitor_code, custom_data_index, warehouse_key, timeout
        )

    async def get_visitor_warehouse_audience_async(
        self,
        visitor_code: str,
        custom_data_index: int,
        warehouse_key: str | None = None,
        timeout: float | None = None,
    ) -> CustomData | None:
        return await self._remote.get_visitor_warehouse_audience_async(
            visitor_code, custom_data_index, warehouse_key, timeout
        )


def _bootstrap(path: str | None) -> Configuration | None:
    """The configuration document at ``path`` (``None``: no path); raises ConfigException."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return parse_configuration_text(f.read())
    except OSError as e:
        raise ConfigFileNotFound(f"configuration document {path!r} cannot be read: {e}") from e
    except ConfigError as e:
        raise ConfigException(f"configuration document {path!r} is invalid: {e}") from e


def _get(mapping: Mapping[Any, Any], key: Any) -> Any:
    try:
        return mapping.get(key)
    except TypeError:  # an unhashable key matches nothing
        return None


def _has_sendable_data(visitor: Visitor, config: Configuration) -> bool:
    # ``is not None``: BrowserType.CHROME and OperatingSystemType.WINDOWS are 0, hence falsy
    if visitor.device is not None or visitor.browser is not None or visitor.geo is not None:
        return True
    if visitor.os is not None or visitor.pages or visitor.conversions or visitor.assigned:
        return True
    return any(values and not config.is_local_only(index) for index, values in visitor.custom_items())


# -- process-wide hooks: fork and exit ----------------------------------------------------------
_clients: weakref.WeakSet[KameleoonClient] = weakref.WeakSet()


def _register(client: KameleoonClient) -> None:
    _clients.add(client)


# Store locks held across a fork by the forking thread (see _before_fork).
_held_at_fork: list[threading.Lock | threading.RLock] = []


def _before_fork() -> None:
    """Waits (a bounded time) for each client's store locks, so that no other thread is half-way
    through updating a visitor record or the store's index when the process is copied: the
    child would keep it half-updated. A lock not free within the bound is left alone (the child replaces
    it anyway), so a fork never hangs on the SDK."""
    for client in list(_clients):
        locks = (client._store.data_lock, client._store._lock)  # in the store's lock order
        _held_at_fork.extend(lock for lock in locks if lock.acquire(timeout=_FORK_LOCK_WAIT))


def _after_fork_in_parent() -> None:
    while _held_at_fork:
        _held_at_fork.pop().release()


def _after_fork() -> None:
    _held_at_fork.clear()  # the child's locks are replaced, the copies are dropped
    for client in list(_clients):
        client._after_fork_in_child()


def _close_all(clients: list[KameleoonClient], timeout: float) -> None:
    """Closes ``clients`` in parallel within one deadline: every thread is told to stop first
    (each tracker flushes on its own thread), then each is waited for until the deadline."""
    deadline = time.monotonic() + timeout
    closing = [client for client in clients if client._begin_close(deadline)]
    for client in closing:
        client._finish_close(deadline)


def _at_exit() -> None:
    _close_all(list(_clients), _EXIT_TIMEOUT)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork
    )
atexit.register(_at_exit)
