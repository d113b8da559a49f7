//! The fixed lists the WDT generator draws names from: carriers, customer names, warehouse
//! staff, refund reasons and order remarks. Data only; the drawing is in
//! [`generate`](super::generate).

/// A carrier WDT knows: its id, its code and its name.
pub struct Carrier {
    pub id: &'static str,
    pub code: &'static str,
    pub name: &'static str,
}

pub const CARRIERS: &[Carrier] = &[
    Carrier {
        id: "1",
        code: "SF",
        name: "顺丰速运",
    },
    Carrier {
        id: "2",
        code: "ZTO",
        name: "中通快递",
    },
    Carrier {
        id: "3",
        code: "YTO",
        name: "圆通速递",
    },
    Carrier {
        id: "4",
        code: "JTSD",
        name: "极兔速递",
    },
    Carrier {
        id: "5",
        code: "YUNDA",
        name: "韵达快递",
    },
];

pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗",
];
pub const GIVEN_NAMES: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "晨", "宇", "欣怡", "子涵", "浩然", "梓萱", "俊杰",
    "雨桐",
];
/// Warehouse staff: `(operator id, name)`.
pub const STAFF: &[(&str, &str)] = &[
    ("12", "王磊"),
    ("15", "李静"),
    ("21", "张伟"),
    ("23", "刘洋"),
    ("31", "陈晨"),
    ("34", "赵敏"),
];
pub const REFUND_REASONS: &[&str] = &[
    "七天无理由退货",
    "尺码不合适",
    "质量问题",
    "发错货",
    "颜色与描述不符",
    "不想要了",
];
pub const ORDER_REMARKS: &[&str] = &[
    "部分残次",
    "外包装破损",
    "按原价退款",
    "已联系客户",
    "赠品未退回",
];
