//! Which WebAPI service a request path names: `/{vdir}/{Service}.common.kdsvc`, the full
//! service name matched case-insensitively. A known path without the virtual directory gets
//! the 403 with an empty body a real site gives; anything else 404. Pure; answering the call
//! is [`service`](super::service)'s business.

use crate::sim::kingdee::mishap::CallKind;

/// The services the sandbox answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    ValidateUser,
    LoginByAppSecret,
    LoginBySign,
    Logout,
    GetDataCenterList,
    Save,
    BatchSave,
    View,
    Submit,
    Audit,
    UnAudit,
    ExecuteBillQuery,
    BillQuery,
    QueryAsyncResult,
}

const SERVICES: &[(Service, &str)] = &[
    (
        Service::ValidateUser,
        "Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser",
    ),
    (
        Service::LoginByAppSecret,
        "Kingdee.BOS.WebApi.ServicesStub.AuthService.LoginByAppSecret",
    ),
    (
        Service::LoginBySign,
        "Kingdee.BOS.WebApi.ServicesStub.AuthService.LoginBySign",
    ),
    (
        Service::Logout,
        "Kingdee.BOS.WebApi.ServicesStub.AuthService.Logout",
    ),
    (
        Service::GetDataCenterList,
        "Kingdee.BOS.ServiceFacade.ServicesStub.Account.AccountService.GetDataCenterList",
    ),
    (
        Service::Save,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save",
    ),
    (
        Service::BatchSave,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave",
    ),
    (
        Service::View,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.View",
    ),
    (
        Service::Submit,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Submit",
    ),
    (
        Service::Audit,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Audit",
    ),
    (
        Service::UnAudit,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.UnAudit",
    ),
    (
        Service::ExecuteBillQuery,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery",
    ),
    (
        Service::BillQuery,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BillQuery",
    ),
    (
        Service::QueryAsyncResult,
        "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.QueryAsyncResult",
    ),
];

impl Service {
    /// The service a full name denotes, case-insensitively.
    pub fn parse(name: &str) -> Option<Service> {
        SERVICES
            .iter()
            .find(|(_, full)| full.eq_ignore_ascii_case(name))
            .map(|(service, _)| *service)
    }

    /// `AuthService.ValidateUser`, `DynamicFormService.BatchSave`, …: the key of `/_sim/stats`.
    pub fn short_name(self) -> &'static str {
        let full = SERVICES
            .iter()
            .find(|(service, _)| *service == self)
            .map(|(_, full)| *full)
            .expect("every service is listed");
        let mut dots = full.rmatch_indices('.');
        dots.next();
        let start = dots.next().map_or(0, |(index, _)| index + 1);
        &full[start..]
    }

    pub(super) fn kind(self) -> CallKind {
        if self.is_login() || self == Service::Logout {
            CallKind::Login
        } else if self.is_save() {
            CallKind::Save
        } else if self.is_operation() {
            CallKind::Operation
        } else {
            CallKind::Query
        }
    }

    pub fn is_save(self) -> bool {
        matches!(self, Service::Save | Service::BatchSave)
    }

    /// `Submit`, `Audit`, `UnAudit`: they change a bill's status.
    pub fn is_operation(self) -> bool {
        matches!(self, Service::Submit | Service::Audit | Service::UnAudit)
    }

    /// Saves and operations: the calls that change bills, and so meet conflicts, drops and
    /// the capacity limit.
    pub fn is_write(self) -> bool {
        self.is_save() || self.is_operation()
    }

    pub(super) fn is_login(self) -> bool {
        matches!(
            self,
            Service::ValidateUser
                | Service::LoginByAppSecret
                | Service::LoginBySign
                | Service::GetDataCenterList
        )
    }
}

/// Where a path leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Service(Service),
    /// A `.common.kdsvc` path without the virtual directory: 403, empty body (spec §1.3).
    MissingVirtualDirectory,
    NotFound,
}

const SUFFIX: &str = ".common.kdsvc";

/// Route a request path.
pub fn route(vdir: &str, path: &str) -> Route {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let service_of = |segment: &str| -> Option<Option<Service>> {
        let lower = segment.to_ascii_lowercase();
        let name = lower.strip_suffix(SUFFIX)?;
        Some(Service::parse(name))
    };
    match segments.as_slice() {
        [dir, segment] if dir.eq_ignore_ascii_case(vdir) => match service_of(segment) {
            Some(Some(service)) => Route::Service(service),
            _ => Route::NotFound,
        },
        [segment] => match service_of(segment) {
            Some(Some(_)) => Route::MissingVirtualDirectory,
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_service_names_case_insensitively() {
        for (path, expected) in [
            (
                "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc",
                Route::Service(Service::BatchSave),
            ),
            (
                "/K3Cloud/kingdee.bos.webapi.servicesstub.dynamicformservice.batchSave.COMMON.KDSVC",
                Route::Service(Service::BatchSave),
            ),
            (
                "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc",
                Route::Service(Service::ValidateUser),
            ),
            (
                "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Frobnicate.common.kdsvc",
                Route::NotFound,
            ),
            (
                "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave",
                Route::NotFound,
            ),
            (
                "/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc",
                Route::MissingVirtualDirectory,
            ),
            (
                "/other/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave.common.kdsvc",
                Route::NotFound,
            ),
            ("/", Route::NotFound),
        ] {
            assert_eq!(route("k3cloud", path), expected, "{path}");
        }
    }

    #[test]
    fn short_names_are_the_last_two_segments() {
        assert_eq!(
            Service::BatchSave.short_name(),
            "DynamicFormService.BatchSave"
        );
        assert_eq!(
            Service::ValidateUser.short_name(),
            "AuthService.ValidateUser"
        );
        assert_eq!(
            Service::GetDataCenterList.short_name(),
            "AccountService.GetDataCenterList"
        );
    }
}
