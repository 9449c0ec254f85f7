"""Flask-WTF forms of the agent editor; each carries a CSRF token.

The forms only collect input: the rules (title required, slug shape, password length...) live in
kb.articles and kb.agents, whose ValidationError messages the views show next to the form.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length

from kb.models import ROLES
from kb.render_limits import MAX_BODY_CHARS

# Plain strings (value = label): WTForms 3.3 deprecates (value, label) tuples.
ROLE_CHOICES = list(ROLES)


class LoginForm(FlaskForm):
    """Email and password, and where to go afterwards."""

    email = StringField("Email", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])
    next = HiddenField()


class ArticleForm(FlaskForm):
    """An article's content (which button was pressed arrives separately, as ``action``)."""

    title = StringField("Title", validators=[Length(max=300)])
    slug = StringField("Slug", validators=[Length(max=200)])
    body_md = TextAreaField("Markdown", validators=[Length(max=MAX_BODY_CHARS)])
    lang = SelectField("Language", choices=[], validate_choice=False)
    category = StringField("Category", validators=[Length(max=120)])
    tags = StringField("Tags", validators=[Length(max=1000)])
    note = StringField("Change note", validators=[Length(max=300)])
    # The revision the agent started from: saving over a newer one would silently lose it.
    base_revision = HiddenField()


class ImageForm(FlaskForm):
    """An image to upload, and its description for people who cannot see it."""

    image = FileField("Image")
    alt = StringField("Description (alt text)", validators=[Length(max=200)])


class AgentForm(FlaskForm):
    """A new agent."""

    email = StringField("Email", validators=[InputRequired(), Length(max=254)])
    name = StringField("Name", validators=[InputRequired(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    password = PasswordField("Password", validators=[InputRequired(), Length(max=1024)])


class RoleForm(FlaskForm):
    """Change an agent's role."""

    role = SelectField("Role", choices=ROLE_CHOICES)


class PasswordForm(FlaskForm):
    """Set a new password for an agent."""

    password = PasswordField("New password", validators=[InputRequired(), Length(max=1024)])

