"""The article list and the Markdown editor with its live preview."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from kb import articles as kb_articles
from kb.config import configured_languages
from kb.db import get_session
from kb.errors import ValidationError
from kb.models import STATUSES, Article
from kb.render_limits import MAX_BODY_CHARS
from kb.rendering import render
from kb.web.agent import bp
from kb.web.agent.auth import current_agent
from kb.web.agent.forms import ArticleForm
from kb.web.agent.listing import ArticleFilters, categories, languages, list_articles

SAVE_CLASH = "Another save of this article happened at the same moment. Your text is kept below: save again."

# The status each editor button leads to; "save" keeps the current one.
ACTION_STATUS = {"publish": "published", "unpublish": "draft", "archive": "archived"}
ACTIONS = {"preview", "save", *ACTION_STATUS}
PER_PAGE = 25


def portal_url(article: Article) -> str:
    """Where customers read the article."""
    return url_for("portal.article", slug=article.slug)


@bp.get("/")
def articles():
    """Every article, with filters for status, language, category and title/slug text."""
    args = request.args
    filters = ArticleFilters(status=args.get("status", "") if args.get("status") in STATUSES else "",
                             lang=args.get("lang", "")[:16], category=args.get("category", "")[:120],
                             text=args.get("q", "")[:200])
    session = get_session()
    page = list_articles(session, filters, page=args.get("page", 1, type=int), per_page=PER_PAGE)
    return render_template("agent/articles.html", page=page, filters=filters, statuses=STATUSES,
                           languages=languages(session, configured_languages(current_app.config)), categories=categories(session))


def get_article_or_404(article_id: int) -> Article:
    """The article with this id, or a 404."""
    article = get_session().get(Article, article_id)
    if article is None:
        abort(404, "There is no article with this number. It may have been deleted.")
    return article


def _form_for(article: Article | None) -> ArticleForm:
    """The editor form, filled from the request if posted, else from the article or defaults."""
    if request.method == "POST":
        form = ArticleForm()
    elif article is not None:
        form = ArticleForm(title=article.title, slug=article.slug, body_md=article.body_md, lang=article.lang,
                           category=article.category, tags=", ".join(article.tags),
                           base_revision=str(_latest_revision(article)))
    else:
        form = ArticleForm(lang=current_app.config["DEFAULT_LANGUAGE"])
    codes = languages(get_session(), configured_languages(current_app.config))
    if form.lang.data and form.lang.data not in codes:
        codes.append(form.lang.data)
    form.lang.choices = codes  # plain strings: WTForms 3.3 deprecates (value, label) tuples
    return form


def _latest_revision(article: Article) -> int:
    """The number of the article's newest revision (0 if it has none)."""
    return article.revisions[-1].number if article.revisions else 0


def _check_not_overtaken(form: ArticleForm, article: Article) -> None:
    """Refuse to save over a revision the agent never saw (another agent saved meanwhile)."""
    base = (form.base_revision.data or "").strip()
    latest = _latest_revision(article)
    if base.isdigit() and int(base) != latest:
        raise ValidationError(f"Someone else saved this article (revision {latest}) after you opened it. "
                              "Your text is kept below: copy it, reload the page and apply your changes again.")


def _draft_from(form: ArticleForm) -> kb_articles.ArticleDraft:
    """The form's values as an ArticleDraft (the domain validates them)."""
    return kb_articles.ArticleDraft(title=form.title.data or "", body_md=form.body_md.data or "",
                                    lang=form.lang.data or "", category=form.category.data or "",
                                    tags=form.tags.data or "", slug=(form.slug.data or "").strip() or None)


def _render_editor(form: ArticleForm, article: Article | None, *, error: str | None = None, status: int = 200):
    """The editor page, its preview rendered from the form's Markdown exactly as the portal would."""
    preview = render(form.body_md.data)  # never raises; a problem is shown to the agent beside the preview
    return render_template("agent/edit.html", form=form, article=article, error=error,
                           preview_html=Markup(preview.html), preview_problem=preview.problem,
                           categories=categories(get_session()),
                           portal_url=portal_url(article) if article else None), status


def _posted_action(form: ArticleForm) -> str | None:
    """The button pressed, or None if the form did not validate (CSRF is checked app-wide)."""
    if not form.validate_on_submit():
        return None
    action = request.form.get("action", "save")
    return action if action in ACTIONS else "save"


def _form_errors(form: ArticleForm) -> str:
    """The WTForms errors as one sentence."""
    return " ".join(f"{form[name].label.text}: {' '.join(errs)}" for name, errs in form.errors.items() if name in form)


@bp.route("/articles/new", methods=["GET", "POST"])
def new_article():
    """Write a new article; Save draft or Publish creates it, Preview only renders."""
    form = _form_for(None)
    action = _posted_action(form)
    if action is None:
        return _render_editor(form, None, error=_form_errors(form) or None, status=422 if form.errors else 200)
    if action == "preview":
        return _render_editor(form, None)
    session = get_session()
    status = "published" if action == "publish" else "draft"
    try:
        article = kb_articles.create_article(session, _draft_from(form), author=current_agent(), status=status,
                                             note=form.note.data or "Created")
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return _render_editor(form, None, error=str(exc), status=422)
    except (sa.exc.IntegrityError, sa.exc.OperationalError):  # e.g. the same slug saved at the same instant
        session.rollback()
        return _render_editor(form, None, error=SAVE_CLASH, status=409)
    _flash_result(article, action, changed=True)
    return redirect(url_for("agent.edit_article", article_id=article.id))


@bp.route("/articles/<int:article_id>/edit", methods=["GET", "POST"])
def edit_article(article_id: int):
    """Edit an article: save, publish, unpublish or archive it, or preview the changes."""
    article = get_article_or_404(article_id)
    form = _form_for(article)
    action = _posted_action(form)
    if action is None:
        return _render_editor(form, article, error=_form_errors(form) or None, status=422 if form.errors else 200)
    if action == "preview":
        return _render_editor(form, article)
    session = get_session()
    try:
        _check_not_overtaken(form, article)
        changed = kb_articles.update_article(session, article, _draft_from(form), author=current_agent(),
                                             note=form.note.data or "")
        if action in ACTION_STATUS:
            changed = kb_articles.set_status(session, article, ACTION_STATUS[action]) or changed
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return _render_editor(form, article, error=str(exc), status=422)
    except (sa.exc.IntegrityError, sa.exc.OperationalError):  # a save at the same instant won
        session.rollback()
        return _render_editor(form, article, error=SAVE_CLASH, status=409)
    _flash_result(article, action, changed)
    return redirect(url_for("agent.edit_article", article_id=article.id))


def _flash_result(article: Article, action: str, changed: bool) -> None:
    """Tell the agent what happened, with a link to the portal once published."""
    if article.status == "published" and action in {"publish", "save"} and changed:
        verb = "Published" if action == "publish" else "Saved and live"
        flash(Markup('{} — <a href="{}">view on the portal</a>').format(verb, portal_url(article)), "success")
    elif not changed:
        flash("Nothing changed, so nothing was saved.", "info")
    elif action == "unpublish":
        flash("Unpublished: the article is a draft again and customers no longer see it.", "success")
    elif action == "archive":
        flash("Archived: customers no longer see the article.", "success")
    else:
        flash("Draft saved.", "success")


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
