from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    # The address rule is applied by app.accounts.authenticate, which answers every refusal alike.
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)],
                       filters=[lambda s: s.strip() if s else s])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me logged in")
