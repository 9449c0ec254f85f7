"""The article list and the Markdown editor with its live preview, drafts of live articles included.

What each button does in each state of an article lives in kb.drafts; these views only collect
the form, call it, and say what happened.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from kb import articles as kb_articles
from kb import drafts, revisions
from kb.capture import examples as kb_examples
from kb.config import configured_languages
from kb.db import get_session
from kb.errors import FieldError, ValidationError
from kb.insights import health
from kb.models import STATUSES, Article, utcnow
from kb.render_limits import MAX_BODY_CHARS
from kb.rendering import render
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.forms import ArticleForm, ImageForm
from kb.web.agent.listing import PENDING_FILTER, SORTS, ArticleFilters, categories, languages, list_articles

SAVE_CLASH = "Another save of this article happened at the same moment. Your text is kept below: save again."
KEPT_BELOW = "Your text is kept below: copy it, reload the page and apply your changes again."
ACTIONS = {"preview", *drafts.EDITOR_ACTIONS}
PER_PAGE = 25


def portal_url(article: Article) -> str:
    """Where customers read the article."""
    return url_for("portal.article", slug=article.slug)


@bp.get("/")
def articles():
    """Every article, with filters for status (or unpublished changes), language, category and text."""
    args = request.args
    status = args.get("status", "")
    filters = ArticleFilters(status=status if status in (*STATUSES, PENDING_FILTER) else "",
                             lang=args.get("lang", "")[:16], category=args.get("category", "")[:120],
                             text=args.get("q", "")[:200])
    sort = args.get("sort", "updated") if args.get("sort") in SORTS else "updated"
    descending = {"asc": False, "desc": True}.get(args.get("order", ""), SORTS[sort])
    session = get_session()
    page = list_articles(session, filters, page=args.get("page", 1, type=int), per_page=PER_PAGE, sort=sort,
                         descending=descending)
    return render_template("agent/articles.html", page=page, filters=filters, statuses=STATUSES,
                           pending_filter=PENDING_FILTER, categories=categories(session),
                           languages=languages(session, configured_languages(current_app.config)),
                           sort=sort, descending=descending, sorts=SORTS)


def get_article_or_404(article_id: int) -> Article:
    """The article with this id, or a 404."""
    article = get_session().get(Article, article_id)
    if article is None:
        abort(404, "There is no article with this number. It may have been deleted.")
    return article


def _form_for(article: Article | None) -> ArticleForm:
    """The editor form: from the request if posted, else the article's draft or live text, else defaults."""
    session = get_session()
    if request.method == "POST":
        form = ArticleForm()
    elif article is not None:
        content = drafts.editable_content(session, article)
        form = ArticleForm(title=content.title, slug=content.slug, body_md=content.body_md, lang=content.lang,
                           category=content.category, tags=", ".join(content.tags),
                           base_revision=str(revisions.latest_revision_number(session, article)))
    else:  # a new article; ?title=&lang= pre-fill it (the search report's "Write an article")
        lang = request.args.get("lang", "")
        form = ArticleForm(title=" ".join(request.args.get("title", "").split())[:200],
                           lang=lang if lang in configured_languages(current_app.config)
                           else current_app.config["DEFAULT_LANGUAGE"])
    codes = languages(session, configured_languages(current_app.config))
    if form.lang.data and form.lang.data not in codes:
        codes.append(form.lang.data)
    form.lang.choices = codes  # plain strings: WTForms 3.3 deprecates (value, label) tuples
    return form


def base_revision(value: str | None) -> int | None:
    """The revision a form was opened at, or None if the form did not say."""
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None


def _draft_from(form: ArticleForm) -> kb_articles.ArticleDraft:
    """The form's values as an ArticleDraft (the domain validates them)."""
    return kb_articles.ArticleDraft(title=form.title.data or "", body_md=form.body_md.data or "",
                                    lang=form.lang.data or "", category=form.category.data or "",
                                    tags=form.tags.data or "", slug=(form.slug.data or "").strip() or None)


def _render_editor(form: ArticleForm, article: Article | None, *, error: Exception | str | None = None,
                   status: int = 200):
    """The editor page; a field's error is shown at that field, others at the top.

    The preview is rendered from the form's Markdown exactly as the portal would; it never raises,
    and a problem is shown to the agent beside it.
    """
    if isinstance(error, FieldError):
        error = show_at_fields(form, error)
    session = get_session()
    preview = render(form.body_md.data)
    return render_template("agent/edit.html", form=form, article=article, error=str(error) if error else None,
                           invalid=[field for field in form if field.errors],
                           state=drafts.draft_state(session, article) if article else None,
                           unsaved=request.method == "POST", image_form=ImageForm(),
                           preview_html=Markup(preview.html), preview_problem=preview.problem,
                           categories=categories(session), portal_url=portal_url(article) if article else None,
                           examples=kb_examples.for_article(session, article.id) if article else [],
                           example_sources=example_sources(), today=utcnow().date(),
                           flag=health.flag_of(session, article, current_app.config) if article else None), status


def example_sources() -> dict[str, str]:
    """What each source of an example question is called on the editor page."""
    return {"answered": _("answered email"), "solved": _("auto-reply marked Solved"),
            "editor": _("added in the editor"), "gap": _("content gap"), "import": _("imported")}


def show_at_fields(form, error: FieldError) -> str | None:
    """Put each message at its field; return what belongs to no field of this form (or None)."""
    left = []
    for name, message in error.errors.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
        else:
            left.append(message)
    return " ".join(left) or None


def _posted_action(form: ArticleForm) -> str | None:
    """The button pressed, or None if the form did not validate (CSRF is checked app-wide)."""
    if not form.validate_on_submit():
        return None
    action = request.form.get("action", "save")
    return action if action in ACTIONS else "save"


@bp.route("/articles/new", methods=["GET", "POST"])
def new_article():
    """Write a new article; Save draft or Publish creates it, Preview only renders."""
    form = _form_for(None)
    action = _posted_action(form)
    if action is None:
        return _render_editor(form, None, status=422 if form.errors else 200)
    if action == "preview":
        return _render_editor(form, None)
    session = get_session()
    status = "published" if action == "publish" else "draft"
    try:
        article = kb_articles.create_article(session, _draft_from(form), author=current_agent(), status=status,
                                             note=kb_articles.combine_note("Created", form.note.data))
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return _render_editor(form, None, error=exc, status=422)
    except (sa.exc.IntegrityError, sa.exc.OperationalError):  # e.g. the same slug saved at the same instant
        session.rollback()
        return _render_editor(form, None, error=SAVE_CLASH, status=409)
    _flash_result(article, action, changed=True)
    return redirect(url_for("agent.edit_article", article_id=article.id))


@bp.route("/articles/<int:article_id>/edit", methods=["GET", "POST"])
def edit_article(article_id: int):
    """Edit an article: save (a draft, if it is live), publish, unpublish or archive it, or preview."""
    article = get_article_or_404(article_id)
    form = _form_for(article)
    action = _posted_action(form)
    if action is None:
        return _render_editor(form, article, status=422 if form.errors else 200)
    if action == "preview":
        return _render_editor(form, article)
    session = get_session()
    try:
        drafts.check_base(session, article, base_revision(form.base_revision.data), KEPT_BELOW)
        changed = drafts.save_from_editor(session, article, _draft_from(form), action, author=current_agent(),
                                          note=form.note.data or "")
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return _render_editor(form, article, error=exc, status=422)
    except (sa.exc.IntegrityError, sa.exc.OperationalError):  # a save at the same instant won
        session.rollback()
        return _render_editor(form, article, error=SAVE_CLASH, status=409)
    _flash_result(article, action, changed)
    return redirect(url_for("agent.edit_article", article_id=article.id))


def _flash_result(article: Article, action: str, changed: bool) -> None:
    """Tell the agent what happened, with a link to the portal once published."""
    if not changed:
        flash("Nothing changed, so nothing was saved.", "info")
    elif action == "publish":
        flash(Markup('Published — <a href="{}">view on the portal</a>').format(portal_url(article)), "success")
    elif action == "unpublish":
        flash("Unpublished: the article is a draft again and customers no longer see it.", "success")
    elif action == "archive":
        flash("Archived: customers no longer see the article.", "success")
    elif article.pending_revision is not None:
        flash("Draft saved. Customers still see the published version until you press “Publish changes”.", "success")
    elif article.status == "published":
        flash("Your draft is back to the published text, so it was closed: nothing is waiting to be published.", "info")
    else:
        flash("Draft saved." if article.status == "draft" else "Saved. The article stays archived.", "success")


@bp.post("/articles/<int:article_id>/draft/discard")
def discard_draft(article_id: int):
    """Throw away a live article's unpublished changes (the history keeps them)."""
    article = get_article_or_404(article_id)
    session, number = get_session(), article.pending_revision
    try:
        drafts.check_base(session, article, base_revision(request.form.get("base_revision")),
                          "Reload the editor and look at the newest version before discarding it.")
        drafts.discard_draft(session, article, author=current_agent())
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(str(exc), "error")
    except (sa.exc.IntegrityError, sa.exc.OperationalError):
        session.rollback()
        flash("Another change to this article happened at the same moment. Reload and try again.", "error")
    else:
        flash(f"Draft discarded: customers see the published version, as before. The history keeps the draft "
              f"if you need it back (revision {number}).", "success")
    return redirect(url_for("agent.edit_article", article_id=article.id))


@bp.post("/preview")
def preview():
    """JSON ``{"body_markdown"}`` in, ``{"html", "problem"}`` out: the portal's own rendering, sanitised."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("body_markdown"), str):
        return {"error": 'Send JSON like {"body_markdown": "# Title"}.'}, 400
    if len(data["body_markdown"]) > MAX_BODY_CHARS:
        return {"error": f"The article is longer than {MAX_BODY_CHARS:,} characters: split it into several "
                         "articles to preview and save it."}, 413
    preview = render(data["body_markdown"])
    return {"html": preview.html, "problem": preview.problem}
