from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from .models import Note


def index(request):
    return render(request, "notes/index.html", {"notes": Note.objects.order_by("-id")[:20]})


def healthz(request):
    with connection.cursor() as c:
        c.execute("SELECT 1")
    return JsonResponse({"status": "ok", "notes": Note.objects.count()}, json_dumps_params={"separators": (", ", ": ")})


# A small API for scripts and tests: no CSRF token.
@csrf_exempt
def add_note(request):
    if request.method != "POST":
        return HttpResponse(status=405)
    note = Note.objects.create(text=request.POST["text"][:200])
    return JsonResponse({"id": note.id, "text": note.text})


@csrf_exempt
def upload(request):
    if request.method != "POST":
        return HttpResponse(status=405)
    f = request.FILES["file"]
    name = Path(f.name).name
    dest = Path(settings.MEDIA_ROOT) / name
    with open(dest, "wb") as out:
        for chunk in f.chunks():
            out.write(chunk)
    return JsonResponse({"stored": name})
