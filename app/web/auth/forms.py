from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    # The address rule is applied by app.signin.authenticate, which answers every refusal alike.
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)],
                       filters=[lambda s: s.strip() if s else s])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class CodeForm(FlaskForm):
    """A 6-digit code from the authenticator app, or a recovery code (app.signin tells them apart)."""

    code = StringField("Authentication code", validators=[DataRequired(), Length(max=64)])


class ForgotPasswordForm(FlaskForm):
    # Any text is taken: app.password_reset answers every address alike, known, unknown or malformed.
    email = EmailField("E-mail", validators=[DataRequired(message="Enter the e-mail address you sign in with."),
                                             Length(max=254)],
                       filters=[lambda s: s.strip() if s else s])
