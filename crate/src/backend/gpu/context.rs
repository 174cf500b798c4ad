//! Getting a device, kept apart from using it (so tests can skip when there is none).
//!
//! Natively any Vulkan adapter is accepted, software ones included (Mesa's lavapipe
//! reports `DeviceType::Cpu`). In the browser wgpu's WebGPU backend fills `AdapterInfo`
//! only partly: `name` is `GPUAdapterInfo.description` (often empty), `vendor` and `device`
//! are 0, `device_type` is `Cpu` when `isFallbackAdapter` is true and `Other` otherwise,
//! and `backend` is `BrowserWebGpu`. The vendor and architecture strings ("google",
//! "swiftshader" for Chromium's software WebGPU) are read from `GPUDevice.adapterInfo`.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

pub(super) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// `GPUAdapterInfo.vendor` and `.architecture` on the web; empty natively.
    pub web_vendor: String,
    pub web_architecture: String,
    /// Messages from wgpu's uncaptured-error and device-lost callbacks.
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Context {
    pub(super) async fn acquire() -> Result<Context> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| {
                // wgpu lists every backend it tried ("vulkan support not compiled in, ...");
                // the first clause is the useful part.
                let full = e.to_string();
                let short = full.split([',', '\n']).next().unwrap_or(&full).trim().to_string();
                Error::Gpu(format!("no WebGPU adapter ({short})"))
            })?;
        let info = adapter.get_info();
        let adapter_limits = adapter.limits();
        // WebGPU's default limits, with the adapter's buffer sizes so datasets fit.
        let required_limits = wgpu::Limits {
            max_buffer_size: adapter_limits.max_buffer_size,
            max_storage_buffer_binding_size: adapter_limits.max_storage_buffer_binding_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("cnn-playground"),
                required_features: wgpu::Features::empty(),
                required_limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", info.name)))?;

        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let sink = Arc::clone(&errors);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut v) = sink.lock() {
                v.push(format!("device lost ({reason:?}): {message}"));
            }
        });

        let (web_vendor, web_architecture) = web_adapter_strings(&device);
        Ok(Context {
            device,
            queue,
            info,
            web_vendor,
            web_architecture,
            errors,
        })
    }

    /// "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, cpu)" or "google swiftshader (WebGPU, fallback)".
    pub(super) fn summary(&self) -> String {
        let name = if !self.info.name.is_empty() {
            self.info.name.clone()
        } else {
            let parts: Vec<&str> = [self.web_vendor.as_str(), self.web_architecture.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            if parts.is_empty() {
                "unnamed adapter".to_string()
            } else {
                parts.join(" ")
            }
        };
        let backend = match self.info.backend {
            wgpu::Backend::BrowserWebGpu => "WebGPU".to_string(),
            b => format!("{b:?}"),
        };
        let kind = match (self.info.backend, self.info.device_type) {
            (wgpu::Backend::BrowserWebGpu, _) if self.is_software() => "fallback",
            (wgpu::Backend::BrowserWebGpu, _) => "hardware",
            (_, wgpu::DeviceType::Cpu) => "cpu",
            (_, wgpu::DeviceType::DiscreteGpu) => "discrete",
            (_, wgpu::DeviceType::IntegratedGpu) => "integrated",
            (_, wgpu::DeviceType::VirtualGpu) => "virtual",
            (_, wgpu::DeviceType::Other) => "other",
        };
        format!("{name} ({backend}, {kind})")
    }

    /// A CPU implementation: lavapipe / SwiftShader natively (`DeviceType::Cpu`), or in the
    /// browser a fallback adapter or one whose architecture is "swiftshader".
    pub(super) fn is_software(&self) -> bool {
        let named = |s: &str| {
            let s = s.to_ascii_lowercase();
            s.contains("swiftshader") || s.contains("llvmpipe") || s.contains("lavapipe")
        };
        self.info.device_type == wgpu::DeviceType::Cpu || named(&self.web_architecture) || named(&self.info.name)
    }
}

/// `GPUDevice.adapterInfo.{vendor, architecture}` (read with `Reflect`, as wgpu does not
/// map them into `AdapterInfo`).
#[cfg(target_arch = "wasm32")]
fn web_adapter_strings(device: &wgpu::Device) -> (String, String) {
    use wasm_bindgen::JsValue;
    let Some(raw) = device.as_webgpu() else {
        return (String::new(), String::new());
    };
    let raw: &JsValue = raw.as_ref();
    let info = js_sys::Reflect::get(raw, &JsValue::from_str("adapterInfo")).unwrap_or(JsValue::UNDEFINED);
    let field = |name: &str| {
        if info.is_undefined() || info.is_null() {
            return String::new();
        }
        js_sys::Reflect::get(&info, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    (field("vendor"), field("architecture"))
}

#[cfg(not(target_arch = "wasm32"))]
fn web_adapter_strings(_device: &wgpu::Device) -> (String, String) {
    (String::new(), String::new())
}
