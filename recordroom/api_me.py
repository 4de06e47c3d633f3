from ninja import Router, Schema

from accounts.roles import roles_of

router = Router(tags=["session"])


class MeOut(Schema):
    id: str
    username: str
    name: str
    roles: list[str]


@router.get("", response=MeOut, summary="Who is signed in, and in which roles")
def me(request):
    user = request.user
    return MeOut(
        id=str(user.public_id),
        username=user.username,
        name=user.display_name,
        roles=[role.value for role in roles_of(user)],
    )
