from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "evalsvc.audit"
    label = "audit"

    def ready(self) -> None:
        # Sign-in (and a failed one) is the one action Django reports only as a signal; everything
        # else is recorded by an explicit audit_record call in its service.
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from .signals import record_sign_in, record_sign_in_failure

        user_logged_in.connect(record_sign_in, dispatch_uid="evalsvc.audit.sign_in")
        user_login_failed.connect(record_sign_in_failure, dispatch_uid="evalsvc.audit.sign_in_failed")
