"""The Pending Licenses tab: its keys, and every action an admin takes on the queue.

What the tab shows (the live queue, paged in, with its selection and filter) is
:class:`~tui_client.screens.queue_view.QueueView`; this adds approve, assign, merge, remove
and accepting likely matches, each a round trip in a worker whose outcome the admin is told.
"""

from __future__ import annotations

from collections.abc import Awaitable

from textual import work
from textual.binding import Binding

from tui_client import format as fmt
from tui_client import safe
from tui_client.actions import AdminAction
from tui_client.api import MAX_IDS, ActionResult, ApiError
from tui_client.messages import AccountChanged
from tui_client.screens.confirm import ConfirmRemove
from tui_client.screens.pickers import AgentPicker, UserPicker
from tui_client.screens.plan import preview_then_apply
from tui_client.screens.queue_view import QueueView
from tui_client.screens.suggestions import SuggestionsScreen
from tui_client.types import ErrorCode, QueueAction, Suggestion, User
from tui_client.undo import OFFER_SECONDS


class PendingView(QueueView):
    BINDINGS = [
        Binding("space", "toggle_select", "Select"),
        Binding("a", AdminAction.APPROVE, "Approve"),
        Binding("s", AdminAction.ASSIGN, "Assign"),
        Binding("m", AdminAction.MERGE, "Merge"),
        Binding("x,delete", AdminAction.REMOVE, "Remove"),
        Binding("y", AdminAction.ACCEPT_MATCH, "Accept match"),
        Binding("w", "suggestions", "Matches"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "cycle_reason", "Reason", show=False),
        Binding("ctrl+a", "select_all", "Select all", show=False),
        Binding("escape", "clear", "Clear", show=False),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if AdminAction.named(action) is not None and not self.admin_app.can_act:
            return None  # shown dimmed: a VIEWER may read but not act
        return True

    # ------------------------------------------------------------------ acting on the selection or the row

    def _targets(self) -> list[str]:
        ids = self.queue.targets(self.table.cursor_key())
        if not ids:
            self.notify("The queue is empty: nothing to act on.", severity="warning")
        return ids

    def _one_target(self, verb: str) -> User | None:
        ids = self._targets()
        if not ids:
            return None
        if len(ids) > 1:
            self.notify(
                f"{verb} works on one user at a time; press esc to clear the selection.", severity="warning"
            )
            return None
        return self.queue.rows[ids[0]]

    def _names(self, ids: list[str]) -> str:
        if len(ids) == 1:
            return self.queue.rows[ids[0]].display_name
        return fmt.plural(len(ids), "user")

    def _bulk(self, verb: str) -> list[str]:
        """The users ``verb`` works on, if one request takes them all."""
        ids = self._targets()
        if len(ids) > MAX_IDS:
            self.notify(f"{verb} at most {MAX_IDS} users at once.", severity="warning")
            return []
        return ids

    def action_approve(self) -> None:
        """The cursor's row at once; a selection after its plan (who, in which order, usage)."""
        ids = self._bulk("Approve")
        if ids:
            self._approve(ids, self._names(ids), planned=bool(self.queue.selected))

    @work(group="pending-action", exit_on_error=False)
    async def _approve(self, ids: list[str], names: str, *, planned: bool) -> None:
        def apply(version: str | None) -> Awaitable[ActionResult | None]:
            busy = f"Approving {names}…"
            return self._mutation(busy, "Approve failed", self.api.approve(ids, version), ids)

        if planned:
            try:
                result = await preview_then_apply(
                    self.app,
                    f"Approve {names}?",
                    lambda: self.api.preview_approval(ids),
                    apply,
                    confirm="Approve",
                )
            except ApiError as exc:
                self.fail("Could not show the plan", exc)
                return
        else:
            result = await apply(None)
        if result is None:
            return
        a = result.account
        undo = self.admin_app.offer_undo(
            QueueAction.APPROVED, result.user_ids or ids, f"the approval of {names}"
        )
        self.notify(
            f"Approved {names}. Licenses: {a.licenses_used}/{a.license_limit} used, "
            f"{a.licenses_available} available. {undo}",
            title="Approved",
            timeout=OFFER_SECONDS,
        )

    def action_assign(self) -> None:
        self._pick_and_resolve(AdminAction.ASSIGN)

    def action_merge(self) -> None:
        self._pick_and_resolve(AdminAction.MERGE)

    def _pick_and_resolve(self, action: AdminAction) -> None:
        """Pick a target for the row's user (a user, or an agent to merge into), then act."""
        merge = action is AdminAction.MERGE
        user = self._one_target("Merge" if merge else "Assign")
        if user is None:
            return

        def chosen(target: tuple[str, str] | None) -> None:
            if target is not None:
                self._resolve(action, user, target[0])

        picker = AgentPicker(self.api, user) if merge else UserPicker(self.api, user)
        self.app.push_screen(picker, chosen)

    async def _mutation(
        self, busy: str, failure: str, call: Awaitable[ActionResult], ids: list[str]
    ) -> ActionResult | None:
        """One mutation under the busy indicator. Done, its users leave the queue and the header
        follows; refused, the admin is told and the queue re-read (it may have changed), and
        the answer is None."""
        self._begin(busy)
        try:
            result = await call
        except ApiError as exc:
            if exc.code == ErrorCode.PLAN_CHANGED:
                raise  # nothing changed: the plan is shown again (preview_then_apply)
            if exc.code == ErrorCode.LICENSE_LIMIT_EXCEEDED:
                # All or nothing, and nothing changed: the selection stays, to retry.
                self.notify(
                    f"{safe.clean(exc.message)}\nNothing was approved. Approve fewer users, raise the limit, "
                    "or remove licensed users.",
                    title="Not enough licenses",
                    severity="error",
                    timeout=10,
                )
            else:
                self.fail(failure, exc)
                self.refresh_data()
            return None
        finally:
            self._end()
        self._drop(result.user_ids or ids)
        self.post_message(AccountChanged(result.account))
        return result

    async def _mutate(self, action: AdminAction, user_id: str, target_id: str) -> ActionResult:
        """Assign (to a user) or merge (into an agent): the same round trip, another mutation."""
        if action is AdminAction.MERGE:
            return await self.api.merge(user_id, target_id)
        return await self.api.assign(user_id, target_id)

    @work(group="pending-action", exit_on_error=False)
    async def _resolve(self, action: AdminAction, user: User, target_id: str) -> None:
        merge = action is AdminAction.MERGE
        busy = f"{'Merging' if merge else 'Assigning'} {user.display_name}…"
        failure = f"{'Merge' if merge else 'Assign'} failed"
        result = await self._mutation(busy, failure, self._mutate(action, user.id, target_id), [user.id])
        if result is None:
            return
        kind, noun = (QueueAction.MERGED, "merge") if merge else (QueueAction.ASSIGNED, "assignment")
        undo = self.admin_app.offer_undo(kind, [user.id], f"the {noun} of {user.display_name}")
        if merge:
            self.notify(
                f"{user.display_name} merged into {result.target}. {undo}",
                title="Merged",
                timeout=OFFER_SECONDS,
            )
        else:
            self.notify(
                f"{user.display_name}'s devices now belong to {result.target}. {undo}",
                title="Assigned",
                timeout=OFFER_SECONDS,
            )

    def action_remove(self) -> None:
        ids = self._bulk("Remove")
        if not ids:
            return
        names = [self.queue.rows[uid].display_name for uid in ids]

        def confirmed(do_not_track: bool | None) -> None:
            if do_not_track is not None:
                self._remove(ids, self._names(ids), do_not_track)

        self.app.push_screen(ConfirmRemove(names), confirmed)

    @work(group="pending-action", exit_on_error=False)
    async def _remove(self, ids: list[str], names: str, do_not_track: bool) -> None:
        result = await self._mutation(
            f"Removing {names}…", "Remove failed", self.api.remove(ids, do_not_track), ids
        )
        if result is None:
            return
        tail = " Their devices will be ignored from now on." if do_not_track else ""
        undo = self.admin_app.offer_undo(QueueAction.REMOVED, ids, f"the removal of {names}")
        self.notify(f"Removed {names}.{tail} {undo}", title="Removed", timeout=OFFER_SECONDS)

    # ------------------------------------------------------------------ likely matches

    def action_suggestions(self) -> None:
        user = self._one_target("Showing matches")
        if user is None:
            return

        def chosen(suggestion: Suggestion | None) -> None:
            if suggestion is not None:
                self._accept([(user, suggestion)])

        self.app.push_screen(SuggestionsScreen(self.api, user, can_act=self.admin_app.can_act), chosen)

    def action_accept_suggestion(self) -> None:
        """The cursor row's best match, or every selected row's: one keystroke per user.

        The server stores only matches above its threshold, so a row with a match qualifies;
        rows without one are left for the admin.
        """
        ids = self._targets()
        if not ids:
            return
        users = [self.queue.rows[uid] for uid in ids]
        todo = [(user, user.suggestions[0]) for user in users if user.suggestions]
        if not todo:
            self.notify("No likely match for this selection; press w to see why.", severity="warning")
            return
        self._accept(todo, len(ids) - len(todo))

    @work(group="pending-action", exit_on_error=False)
    async def _accept(self, todo: list[tuple[User, Suggestion]], skipped: int = 0) -> None:
        what = todo[0][0].display_name if len(todo) == 1 else fmt.plural(len(todo), "user")
        self._begin(f"Accepting the likely match for {what}…")
        done: list[str] = []
        failed: list[str] = []
        account = None
        try:
            for user, s in todo:
                try:
                    result = await self._mutate(AdminAction.resolving(s.kind), user.id, s.target_id)
                except ApiError as exc:
                    failed.append(f"{safe.clean(user.display_name)}: {safe.clean(exc.message)}")
                    continue
                account = result.account
                done.append(user.id)
                self._drop([user.id])
        finally:
            self._end()
        if account is not None:
            self.post_message(AccountChanged(account))
        if len(todo) == 1 and done:
            user, s = todo[0]
            merged = AdminAction.resolving(s.kind) is AdminAction.MERGE
            verb = "merged into" if merged else "assigned to"
            kind, noun = (QueueAction.MERGED, "merge") if merged else (QueueAction.ASSIGNED, "assignment")
            undo = self.admin_app.offer_undo(kind, [user.id], f"the {noun} of {user.display_name}")
            self.notify(
                f"{user.display_name} {verb} {s.target}. {undo}",
                title="Likely match accepted",
                timeout=OFFER_SECONDS,
            )
        elif done:
            tail = f"; {fmt.plural(skipped, 'user')} without a likely match left alone" if skipped else ""
            self.notify(
                f"Resolved {fmt.plural(len(done), 'user')} by their likely match{tail}.", title="Accepted"
            )
        if failed:
            self.notify(
                "\n".join(failed[:5]),
                title="Some matches could not be accepted",
                severity="error",
                timeout=10,
            )
            self.refresh_data()
